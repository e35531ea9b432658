"""Uncertainty sampling measures: ranking, range, cold start and repair of river's probabilities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activestream.score.uncertainty import (
    Entropy,
    LeastConfidence,
    Margin,
    RandomScore,
    entropy,
    least_confidence,
    margin,
    normalise,
)

FUNCTIONS = [least_confidence, margin, entropy]
MEASURES = [LeastConfidence, Margin, Entropy]
CONFIDENT = {"A": 0.9, "B": 0.09, "C": 0.01}
UNSURE = {"A": 0.4, "B": 0.3, "C": 0.3}

labels = st.one_of(st.text(max_size=3), st.integers(), st.booleans())
weights = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
any_weights = st.one_of(weights, st.floats(), st.just(-1.0))


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_unsure_distribution_ranks_above_confident_one(fn):
    assert fn(UNSURE) > fn(CONFIDENT)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    "proba", [{}, {"A": 1.0}, {"A": 0.3}, {"A": 0.0, "B": 0.0}, {"A": -1.0, "B": math.nan}]
)
def test_cold_start_scores_one(fn, proba):
    assert fn(proba) == 1.0


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_extremes(fn):
    assert fn({"A": 1.0, "B": 0.0, "C": 0.0}) == 0.0
    assert fn({"A": 0.2, "B": 0.2, "C": 0.2, "D": 0.2, "E": 0.2}) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_unnormalised_probabilities_are_rescaled(fn):
    assert fn({"A": 9.0, "B": 0.9, "C": 0.1}) == pytest.approx(fn(CONFIDENT))


def test_normalise_survives_huge_values():
    assert normalise({"A": 1e308, "B": 1e308}) == {"A": 0.5, "B": 0.5}


@given(st.dictionaries(labels, any_weights, max_size=8))
def test_scores_lie_in_unit_interval(proba):
    for fn in FUNCTIONS:
        assert 0.0 <= fn(proba) <= 1.0


binary = st.tuples(weights, weights).filter(lambda pair: sum(pair) > 0)


@given(binary, binary)
def test_binary_rankings_agree(a, b):
    pa, pb = {0: a[0], 1: a[1]}, {0: b[0], 1: b[1]}
    # For two classes least confidence and margin coincide; entropy is a monotone function of them,
    # so its ranking agrees up to float noise (entropy is flat near the uniform distribution).
    assert least_confidence(pa) == pytest.approx(margin(pa), abs=1e-12)
    if least_confidence(pa) > least_confidence(pb) + 1e-9:
        assert entropy(pa) >= entropy(pb) - 1e-9
    if entropy(pa) > entropy(pb) + 1e-9:
        assert least_confidence(pa) >= least_confidence(pb) - 1e-9


@pytest.mark.parametrize("cls", MEASURES)
def test_measure_classes_use_the_functions(cls):
    fn = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}[cls.name]
    assert cls().score({"x": 1.0}, UNSURE) == fn(UNSURE)
    assert cls().score({"x": 1.0}, {}) == 1.0


def test_random_score_is_seeded_and_in_range():
    a, b, c = RandomScore(seed=1), RandomScore(seed=1), RandomScore(seed=2)
    draws_a = [a.score({}, UNSURE) for _ in range(50)]
    assert draws_a == [b.score({}, UNSURE) for _ in range(50)]
    assert draws_a != [c.score({}, UNSURE) for _ in range(50)]
    assert all(0.0 <= s < 1.0 for s in draws_a)
    assert a.score({}, {"A": 1.0}) == 1.0
