"""Batch scoring decides exactly as the learner does event by event, and batch parsing parses as pydantic."""

from __future__ import annotations

import contextlib
import json
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import naive_bayes

from activestream.assembly import drift_watch_for, learner_from_settings
from activestream.batch_parsing import parse_events
from activestream.batch_scoring import LinearSnapshot, decide_batch, predict_many, scores_only, vectorisable
from activestream.config import Settings
from activestream.learner import ActiveLearner, Decision, _argmax
from activestream.messages import parse_event
from activestream.models import make_model
from activestream.score.uncertainty import (
    entropy,
    entropy_many,
    least_confidence,
    least_confidence_many,
    margin,
    margin_many,
)

FEATURES = [f"f{i}" for i in range(6)]

# A feature value: mostly floats, sometimes ints, bools, strings (one-hot: per event) or huge numbers.
values = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.integers(-5, 5),
    st.booleans(),
    st.sampled_from(["a", "b"]),
    st.sampled_from([1e300, -1e300, 0.0]),
)
# Missing and extra features, in varying order.
rows = st.dictionaries(st.sampled_from([*FEATURES, "extra", "f0_a"]), values, min_size=1, max_size=8)
# A label: usually a bool, sometimes another class (the logistic regression treats it as truthy).
labels = st.one_of(st.booleans(), st.booleans(), st.sampled_from([0, 1, "other"]))
batches = st.lists(
    st.tuples(st.lists(rows, min_size=0, max_size=30), st.lists(st.tuples(rows, labels), max_size=5)),
    min_size=1,
    max_size=6,
)
configs = st.sampled_from(
    [
        {"model": "logreg"},
        {"model": "logreg", "adaptation": "none"},
        {"model": "logreg", "measure": "entropy", "policy": "biqf"},
        {"model": "logreg", "measure": "least_confidence", "policy": "variable_uncertainty"},
        {"model": "logreg", "measure": "random", "policy": "split"},
        {"model": "logreg", "measure": "expected_model_change", "adaptation": "none"},
        {"model": "gnb", "measure": "margin"},
        {"model": "logreg", "label_free_detector": "adwin", "drift_boost_factor": 3.0},
    ]
)


def _assert_same(by_batch: list, by_event: list) -> None:
    assert len(by_batch) == len(by_event)
    for got, want in zip(by_batch, by_event, strict=True):
        if isinstance(want, Exception):
            assert type(got) is type(want)
            continue
        assert isinstance(got, Decision)
        assert got.score == pytest.approx(want.score, abs=1e-9, nan_ok=True)
        assert got.threshold == pytest.approx(want.threshold, abs=1e-9, nan_ok=True)
        assert (got.ask, got.reason, got.y_pred, got.strategy) == (
            want.ask,
            want.reason,
            want.y_pred,
            want.strategy,
        )
        assert got.proba.keys() == want.proba.keys()
        for label, p in want.proba.items():
            assert got.proba[label] == pytest.approx(p, abs=1e-9, nan_ok=True)


def _decide_each(learner: ActiveLearner, xs: list, after_each) -> list:
    out: list = []
    for x in xs:
        try:
            decision = learner.decide(x)
        except Exception as error:
            out.append(error)
            continue
        out.append(decision)
        after_each(decision.score)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, stream=batches, warm=st.integers(0, 40), seed=st.integers(0, 5), between=st.booleans())
def test_batch_decisions_are_the_per_event_decisions(config, stream, warm, seed, between):
    s = Settings(seed=seed, **config)
    one, many = learner_from_settings(s), learner_from_settings(s)
    # The label-free signal may boost the policy between two decisions (``after_each``); when it cannot,
    # the policy decides the run at once and the signal sees the scores after it (``after_run``).
    w1, w2 = drift_watch_for(one, s), drift_watch_for(many, s)
    assert not w2.steers_policy  # no budget boost in these configurations
    hooks = {"after_each": w2.observe_score} if between else {"after_run": w2.observe_score}
    rng = random.Random(seed)
    for _ in range(warm):  # a cold model when warm == 0
        x = {k: rng.gauss(0, 1) for k in FEATURES}
        y = x["f0"] + x["f1"] > 0
        one.learn_one(x, y)
        many.learn_one(x, y)
    for xs, learned in stream:
        _assert_same(decide_batch(many, xs, **hooks), _decide_each(one, xs, w1.observe_score))
        for x, y in learned:  # learning between batches, unseen classes included
            failures = []
            for learner in (one, many):
                try:
                    learner.learn_one(x, y)
                except Exception as error:  # e.g. a label a model cannot take: both alike
                    failures.append(type(error))
            assert len(failures) in (0, 2)
    assert many.spending == one.spending
    if w1.label_free is not None:
        assert w2.label_free.n_events == w1.label_free.n_events
        assert w2.label_free.alarm_positions == w1.label_free.alarm_positions


def test_a_batch_takes_one_observation_hook_not_both():
    learner = learner_from_settings(Settings(seed=1))
    with pytest.raises(ValueError, match="not both"):
        decide_batch(learner, [{"f0": 1.0}], print, after_run=print)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, stream=batches, warm=st.integers(0, 40), seed=st.integers(0, 5))
def test_predicting_many_is_predicting_each(config, stream, warm, seed):
    """What the stopping criteria's stability check predicts: ties (a cold model) included."""
    learner = learner_from_settings(Settings(seed=seed, **config))
    rng = random.Random(seed)
    for _ in range(warm):
        x = {k: rng.gauss(0, 1) for k in FEATURES}
        learner.learn_one(x, x["f0"] + x["f1"] > 0)
    classifier = learner.classifier
    for xs, learned in stream:
        usable = []
        for x in xs:
            try:
                classifier.predict_one(x)
            except Exception:  # the per-event path would raise on it too: not a row a check can hold
                continue
            usable.append(x)
        assert predict_many(classifier, usable) == [classifier.predict_one(x) for x in usable]
        for x, y in learned:
            with contextlib.suppress(Exception):  # a label the model cannot take
                learner.learn_one(x, y)


@given(
    st.dictionaries(
        st.one_of(st.booleans(), st.integers(0, 3), st.sampled_from(["a", "b"])),
        st.one_of(st.floats(0, 1), st.just(math.nan), st.sampled_from([0.0, 0.5, 1.0])),
        max_size=4,
    )
)
def test_argmax_takes_the_first_highest_class_as_max_does(proba):
    """The binary shortcut of ``_argmax`` (every prediction) keeps ``max``'s tie-break and NaN handling."""
    expected = max(proba, key=proba.__getitem__) if proba else None
    assert _argmax(proba) is expected or _argmax(proba) == expected


def test_scores_only_scores_without_deciding():
    learner = learner_from_settings(Settings(seed=1))
    before = learner.spending
    (decision,) = scores_only(learner, [{"a": 1.0}])
    assert decision.strategy == "margin/batch" and not decision.ask and math.isnan(decision.threshold)
    assert learner.spending == before


def test_a_row_the_model_cannot_take_gives_its_exception_and_skips_the_policy():
    class Picky(naive_bayes.GaussianNB):
        def predict_proba_one(self, x, **kwargs):
            if "bad" in x:
                raise TypeError("no")
            return super().predict_proba_one(x)

    learner = ActiveLearner(Picky(), budget=0.5, seed=1)
    out = decide_batch(learner, [{"a": 1.0}, {"bad": 1.0}, {"a": 2.0}])
    assert isinstance(out[1], TypeError)
    assert learner.threshold_policy.spending > 0  # the two others were decided


def test_what_is_vectorised():
    assert vectorisable(make_model("logreg"))
    assert vectorisable(learner_from_settings(Settings()).classifier)  # behind the drift arms
    assert not vectorisable(make_model("gnb"))
    assert LinearSnapshot.of(make_model("hat")) is None


def test_the_vectorised_logistic_regression_is_river_bit_for_bit():
    model = make_model("logreg")
    rng = random.Random(0)
    for _ in range(300):
        x = {k: rng.gauss(0, 3) for k in FEATURES}
        model.learn_one(x, x["f0"] > 0)
    xs = [{k: rng.gauss(0, 3) for k in rng.sample(FEATURES, 4)} for _ in range(200)]
    by_event = [model.predict_proba_one(x)[True] for x in xs]
    snapshot = LinearSnapshot.of(model)
    by_batch = [snapshot.positive_proba(list(x), np.array([list(x.values())]))[0] for x in xs]
    assert by_batch == by_event


@given(
    st.lists(st.one_of(st.floats(allow_nan=True), st.sampled_from([0.0, -1.0, 1e-300, 1e300])), max_size=5)
)
def test_vectorised_uncertainty_is_the_per_event_measure(row):
    proba = dict(enumerate(row))
    matrix = np.array([row], dtype=float).reshape(1, len(row))
    for one, many in (
        (least_confidence, least_confidence_many),
        (margin, margin_many),
        (entropy, entropy_many),
    ):
        assert float(many(matrix)[0]) == one(proba)


# -- batch parsing ---------------------------------------------------------------------------------------
json_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=3),
    st.text(min_size=4, max_size=9),  # around the string limits below
    st.none(),
    st.lists(st.integers(), max_size=2),
)
records = st.one_of(
    st.builds(
        lambda i, f, extra: json.dumps({"id": i, "features": f, **extra}).encode(),
        st.one_of(st.text(min_size=0, max_size=4), st.integers(), st.none()),
        st.dictionaries(st.text(max_size=3), json_values, max_size=4),
        st.dictionaries(st.sampled_from(["timestamp", "metadata", "other"]), json_values, max_size=2),
    ),
    st.sampled_from(
        [
            b'{"id": "a", "features": {"x": NaN}}',
            b'{"id": "a", "features": {"x": 1e400}}',
            b'{"id": "a", "id": "b", "features": {"x": 1, "x": "s"}}',
            b'{"id": "a", "features": {"x": 1}} trailing',
            b'{"id": "a", "features": {"x": 1}, "timestamp": "2026-01-01T00:00:00Z"}',
            b'{"id": "a", "features": {"x": 1}, "metadata": {"k": "v"}}',
            b'{"id": "a", "features": {"x": "12345", "y": "123456"}}',
            b'{"id": "a", "features": {"x": NaN, "y": "123456"}}',
            b'{"id": "a", "features": {"y": "123456", "x": NaN}}',
            b'{"id": "a", "features": {"x": "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}}',
            b"[1, 2]",
            b"   ",
            b"\xff",
        ]
    ),
    st.binary(max_size=20),
    st.none(),
)


@settings(max_examples=300)
@given(st.lists(records, max_size=8), st.integers(0, 7))
def test_batch_parsing_is_parse_event(raws, max_string_chars):
    assert parse_events(raws, 200, 3, max_string_chars) == [
        parse_event(raw, 200, 3, max_string_chars) for raw in raws
    ]


def test_the_fast_event_construction_is_pydantic_model_construct():
    from activestream.batch_parsing import _construct
    from activestream.messages import Event

    fast = _construct("e-1", {"x": 1.0}, {"id", "features"})
    slow = Event.model_construct(_fields_set={"id", "features"}, id="e-1", features={"x": 1.0})
    for attribute in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        assert getattr(fast, attribute) == getattr(slow, attribute)
    assert fast == slow and repr(fast) == repr(slow)
    assert fast.model_dump_json() == slow.model_dump_json()
