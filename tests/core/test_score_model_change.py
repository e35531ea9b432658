"""Expected model change: boundary and large-norm events score highest, scores stay in [0, 1]."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import compose, datasets, linear_model, naive_bayes, preprocessing

from activestream.score.model_change import ExpectedModelChange, gradient_factor, linear_inputs


@pytest.fixture(scope="module")
def sea_model():
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in datasets.synth.SEA(seed=1).take(300):
        model.learn_one(x, y)
    return model


def grid() -> list[dict]:
    steps = [-10.0 + 2.5 * i for i in range(13)]
    return [{0: a, 1: b, 2: 5.0} for a in steps for b in steps]


def test_boundary_and_large_norm_score_highest(sea_model):
    measure = ExpectedModelChange()
    events = grid()
    for x in events:  # settle the running maximum first, so that the order of scoring does not matter
        measure.score(x, sea_model.predict_proba_one(x), sea_model)
    rows = []
    for x in events:
        p = sea_model.predict_proba_one(x)[True]
        norm = math.hypot(*sea_model["StandardScaler"].transform_one(x).values())
        rows.append((measure.score(x, sea_model.predict_proba_one(x), sea_model), p, norm))
    best_score, best_p, best_norm = max(rows)
    assert abs(best_p - 0.5) < 0.1
    assert best_norm > sorted(r[2] for r in rows)[len(rows) // 2]
    boundary = sorted((r for r in rows if abs(r[1] - 0.5) < 0.05), key=lambda r: r[2])
    assert boundary[-1][0] > boundary[0][0]  # on the boundary, the larger input moves the model more
    confident = [r for r in rows if abs(r[1] - 0.5) > 0.45]
    assert confident and max(r[0] for r in confident) < best_score


def test_scores_in_range_on_sea(sea_model):
    measure = ExpectedModelChange()
    for x, _ in datasets.synth.SEA(seed=2).take(200):
        assert 0.0 <= measure.score(x, sea_model.predict_proba_one(x), sea_model) <= 1.0


def test_scoring_does_not_train_the_pipeline(sea_model):
    before = sea_model["LogisticRegression"].weights
    means = dict(sea_model["StandardScaler"].means)
    ExpectedModelChange().score({0: 100.0, 1: 0.0, 2: 0.0}, {True: 0.5, False: 0.5}, sea_model)
    assert sea_model["LogisticRegression"].weights == before
    assert dict(sea_model["StandardScaler"].means) == means


def test_binary_factor_is_four_p_one_minus_p():
    for p in (0.0, 0.1, 0.25, 0.5, 0.8, 1.0):
        assert gradient_factor({True: p, False: 1.0 - p}) == pytest.approx(4 * p * (1 - p))


def test_multiclass_factor_peaks_at_uniform():
    assert gradient_factor({c: 0.25 for c in "abcd"}) == pytest.approx(1.0)
    assert gradient_factor({"a": 1.0, "b": 0.0, "c": 0.0}) == 0.0
    assert gradient_factor({"a": 0.5, "b": 0.3, "c": 0.2}) > gradient_factor({"a": 0.8, "b": 0.1, "c": 0.1})


def test_cold_start_scores_one_and_leaves_running_max():
    measure = ExpectedModelChange()
    model = linear_model.LogisticRegression()
    assert measure.score({"a": 1e6}, {}, model) == 1.0
    assert measure.score({"a": 1e6}, {True: 1.0}, model) == 1.0
    assert measure.max_norm == 0.0


def test_without_linear_model_only_probabilities_count():
    measure = ExpectedModelChange()
    proba = {True: 0.7, False: 0.3}
    assert measure.score({"a": 5.0}, proba) == pytest.approx(4 * 0.7 * 0.3)
    assert measure.score({"a": 5.0}, proba, naive_bayes.GaussianNB()) == pytest.approx(4 * 0.7 * 0.3)
    assert linear_inputs(None, {"a": 5.0}) is None


def test_linear_inputs_skips_non_transforming_steps():
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    model.learn_one({"a": 1.0}, True)
    model.learn_one({"a": 3.0}, False)
    assert linear_inputs(model, {"a": 5.0}) == {"a": 3.0}
    assert linear_inputs(linear_model.LogisticRegression(), {"a": 5.0}) == {"a": 5.0}


finite = st.floats(min_value=-1e6, max_value=1e6)


@given(st.lists(st.tuples(st.dictionaries(st.sampled_from("abc"), finite), st.floats(0.0, 1.0)), max_size=20))
def test_scores_lie_in_unit_interval(stream):
    measure = ExpectedModelChange()
    model = linear_model.LogisticRegression()
    for x, p in stream:
        assert 0.0 <= measure.score(x, {True: p, False: 1.0 - p}, model) <= 1.0
