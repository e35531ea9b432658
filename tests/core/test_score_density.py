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


def reference_similarity(measure: DensityWeighted, x: dict) -> float:
    """The definition, event by event, over what the measure remembers."""
    import math

    if not measure.recent:
        return 1.0
    scale = 2.0 * measure.bandwidth**2
    kernels = [math.exp(-squared_distance(x, seen) / scale) for seen in measure.recent]
    return math.fsum(kernels) / len(kernels)


numbers_only = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([float("nan"), float("inf"), True]))
# Mostly the stream's usual numeric features; now and then another schema, a category or a gap.
stream_events = st.one_of(
    st.fixed_dictionaries({"a": numbers_only, "b": numbers_only}),
    st.fixed_dictionaries({"a": numbers_only, "b": numbers_only}),
    st.fixed_dictionaries({"a": numbers_only, "b": numbers_only}),
    st.fixed_dictionaries({"a": numbers_only}),
    st.fixed_dictionaries({"a": numbers_only, "b": st.sampled_from(["x", "y"])}),
    st.fixed_dictionaries({"b": numbers_only, "c": numbers_only}),
    st.just({}),
)


@given(st.lists(stream_events, min_size=1, max_size=40), st.integers(1, 6), st.floats(0.1, 5.0))
def test_the_matrix_path_agrees_with_the_definition(xs, memory, bandwidth):
    """Whatever mix of schemas passes through the memory, the similarity is the definition's (the two
    paths round each squared distance differently, nothing else)."""
    measure = DensityWeighted(Margin(), memory=memory, bandwidth=bandwidth)
    for x in xs:
        assert measure.similarity(x) == pytest.approx(reference_similarity(measure, x), rel=1e-9, abs=1e-12)
        measure.score(x, UNSURE)
    assert list(measure.recent) == [dict(x) for x in xs[-memory:]]


def test_a_uniform_numeric_stream_runs_on_the_matrix():
    measure = warmed(DensityWeighted(Margin(), memory=20))

    def on_matrix(x):
        return measure._matrix_similarity(measure._row(x)) is not None

    assert on_matrix({"a": 0.0, "b": 0.0})
    assert not on_matrix({"a": 0.0, "c": 0.0})  # another feature
    measure.score({"a": 0.0, "b": "category"}, UNSURE)
    assert not on_matrix({"a": 0.0, "b": 0.0})  # until that event leaves the memory
    warmed(measure, n=20)
    assert on_matrix({"a": 0.0, "b": 0.0})


def test_a_pickled_measure_scores_as_the_original():
    import pickle

    measure = warmed(DensityWeighted(Margin(), memory=30))
    measure.score({"a": 1.0, "c": "x"}, UNSURE)
    restored = pickle.loads(pickle.dumps(measure))
    assert restored.recent == measure.recent
    for x in cluster(40, seed=5):
        assert restored.score(x, UNSURE) == measure.score(x, UNSURE)


def test_a_checkpoint_from_before_the_matrix_restores():
    """Checkpoints written before the matrix hold the instance's dict with ``recent`` a deque (and
    pickles still do: the matrix is derived, so the format did not change)."""
    from collections import deque

    measure = warmed(DensityWeighted(Margin(), memory=10))
    old_state = {
        "inner": measure.inner,
        "beta": 1.0,
        "bandwidth": 1.0,
        "memory": 10,
        "recent": deque(measure.recent, maxlen=10),
    }
    assert measure.__getstate__().keys() == old_state.keys()
    restored = DensityWeighted.__new__(DensityWeighted)
    restored.__setstate__(old_state)  # what unpickling does
    assert restored.recent == measure.recent
    assert restored.similarity({"a": 0.5, "b": 0.5}) == measure.similarity({"a": 0.5, "b": 0.5})
