"""Information density: typical events outrank outliers, memory stays bounded, beta = 0 is a no-op."""

from __future__ import annotations

import random
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activestream.score.base import Measure
from activestream.score.density import DensityWeighted, squared_distance
from activestream.score.uncertainty import Entropy, Margin

UNSURE = {"A": 0.6, "B": 0.4}


class Spy(Measure):
    """Scores a constant and records the labeled examples it is given."""

    name: ClassVar[str] = "spy"

    def __init__(self, value: float = 0.5):
        self.value = value
        self.learned: list = []

    def score(self, x, proba, model=None):
        return 1.0 if len(proba) < 2 else self.value

    def learn_one(self, x, y):
        self.learned.append((x, y))


def cluster(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"a": rng.gauss(0.0, 0.5), "b": rng.gauss(0.0, 0.5)} for _ in range(n)]


def warmed(measure: DensityWeighted, n: int = 50) -> DensityWeighted:
    for x in cluster(n):
        measure.score(x, UNSURE)
    return measure


def test_outlier_scores_lower_than_typical_point():
    measure = warmed(DensityWeighted(Margin()))
    typical = measure.score({"a": 0.0, "b": 0.0}, UNSURE)
    outlier = measure.score({"a": 4.0, "b": -4.0}, UNSURE)
    assert outlier < typical <= Margin().score({}, UNSURE)


def test_memory_is_bounded_and_holds_copies():
    measure = DensityWeighted(memory=10)
    event = {"a": 1.0}
    measure.score(event, UNSURE)
    event["a"] = 99.0
    assert measure.recent[0] == {"a": 1.0}
    warmed(measure, n=25)
    assert len(measure.recent) == 10


def test_beta_zero_equals_inner_measure():
    measure, inner = DensityWeighted(Entropy(), beta=0.0), Entropy()
    rng = random.Random(1)
    for x in [*cluster(30), {"a": 50.0, "b": 50.0}]:
        p = rng.random()
        proba = {"A": p, "B": 1.0 - p}
        assert measure.score(x, proba) == inner.score(x, proba)


def test_larger_beta_penalises_outliers_more():
    outlier = {"a": 2.0, "b": 2.0}
    mild = warmed(DensityWeighted(Margin(), beta=0.5)).score(outlier, UNSURE)
    strong = warmed(DensityWeighted(Margin(), beta=2.0)).score(outlier, UNSURE)
    assert strong < mild


def test_first_event_has_density_one():
    assert DensityWeighted(Margin()).score({"a": 123.0}, UNSURE) == Margin().score({}, UNSURE)


def test_cold_start_overrides_density_and_still_remembers():
    measure = warmed(DensityWeighted(Margin()))
    assert measure.score({"a": 100.0, "b": 100.0}, {}) == 1.0
    assert measure.recent[-1] == {"a": 100.0, "b": 100.0}


def test_learn_one_is_forwarded():
    spy = Spy()
    DensityWeighted(spy).learn_one({"a": 1.0}, "A")
    assert spy.learned == [({"a": 1.0}, "A")]


def test_inner_without_is_cold_uses_proba():
    measure = DensityWeighted(Spy(0.5))
    assert measure.score({"a": 0.0}, {"A": 1.0}) == 1.0
    assert measure.score({"a": 9.0}, UNSURE) < 0.5


def test_squared_distance_mixes_numeric_and_categorical():
    assert squared_distance({"a": 1.0, "c": "x"}, {"a": 1.0, "c": "x"}) == 0.0
    assert squared_distance({"a": 1.0, "c": "x"}, {"a": 3.0, "c": "y"}) == 5.0
    assert squared_distance({"a": 2.0}, {}) == 4.0  # absent numeric counts as 0
    assert squared_distance({"c": "x"}, {}) == 1.0  # absent category is a mismatch
    assert squared_distance({"flag": True}, {"flag": False}) == 1.0
    assert squared_distance({"a": float("nan")}, {"a": 1.0}) == 0.0


@pytest.mark.parametrize("kwargs", [{"beta": -1.0}, {"bandwidth": 0.0}, {"memory": 0}])
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        DensityWeighted(**kwargs)


values = st.one_of(st.floats(allow_nan=True), st.sampled_from(["x", "y"]), st.booleans())
events = st.dictionaries(st.sampled_from("abc"), values, max_size=3)


@given(st.lists(events, min_size=1, max_size=10), st.floats(0.0, 1.0))
def test_scores_lie_in_unit_interval(xs, p):
    measure = DensityWeighted(beta=1.5, memory=5)
    for x in xs:
        assert 0.0 <= measure.score(x, {"A": p, "B": 1.0 - p}) <= 1.0
