"""Labels keep their type: a binary model taught 0/1 predicts 0/1 in label requests (not river's
True/False), one taught true/false predicts booleans, and an untrained one predicts null."""

from __future__ import annotations

import json

import pytest

from activestream.batch_scoring import decide_batch, scores_only
from activestream.learner import make_learner
from activestream.messages import Event, to_json
from activestream.outgoing import label_request_for

ROWS = [{"a": 1.0, "b": -0.5}, {"a": -2.0, "b": 0.3}]


def _request(learner, features: dict) -> dict:
    decision = learner.decide(features)
    event = Event(id="e-1", features=features)
    return json.loads(to_json(label_request_for(event, decision, model_version=1, now_ms=0, ttl_ms=1000)))


def _taught(labels: list) -> object:
    learner = make_learner("logreg", seed=1)
    for x, y in zip(ROWS * 5, labels * 5, strict=True):
        learner.learn_one(x, y)
    return learner


@pytest.mark.parametrize(("labels", "keys"), [([0, 1], {"0", "1"}), ([False, True], {"False", "True"})])
def test_a_binary_model_answers_in_the_labels_it_was_taught(labels, keys):
    request = _request(_taught(labels), ROWS[0])
    assert request["predicted_label"] in labels
    assert type(request["predicted_label"]) is type(labels[0])
    assert set(request["probabilities"]) == keys


def test_an_untrained_model_predicts_null():
    learner = make_learner("logreg", seed=1)
    request = _request(learner, ROWS[0])
    assert request["predicted_label"] is None
    # Evaluation keeps the model's argmax, as every baseline's does (the comparisons stay fair).
    decision = learner.decide(ROWS[0])
    assert not decision.trained and decision.y_pred is not None
    assert all(not d.trained for d in decide_batch(learner, ROWS) + scores_only(learner, ROWS))


def test_the_batch_paths_present_labels_as_the_per_event_path():
    learner = _taught([0, 1])
    per_event = [learner.present(learner.classifier.predict_proba_one(x)) for x in ROWS]
    for decisions in (scores_only(learner, ROWS), decide_batch(_taught([0, 1]), ROWS)):
        got = [(d.y_pred, d.proba) for d in decisions]
        assert [(y, sorted(p)) for y, p in got] == [(y, sorted(p)) for y, p in per_event]
        assert all(type(y) is int for y, _ in got)
        assert all(d.trained for d in decisions)


def test_a_multiclass_model_keeps_its_labels():
    learner = make_learner("gnb", seed=1)
    assert learner.decide(ROWS[0]).y_pred is None  # untrained: nothing to predict
    for x, y in zip(ROWS * 3, ["up", "down"] * 3, strict=True):
        learner.learn_one(x, y)
    assert learner.decide(ROWS[0]).y_pred in {"up", "down"}
