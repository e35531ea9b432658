"""The engine with a training log: a joined label becomes one record, every engine learns the records once,
and engines fed the same records hold the same model whatever events each of them decided."""

from __future__ import annotations

import json
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine import T0, event, truth
from test_engine import settings as engine_settings

from activestream.engine import Engine
from activestream.engine.training_log import parse_example, training_record
from activestream.join import PendingEntry
from activestream.messages import LabelRequest
from activestream.transport.base import Message, TopicPartition

TRAINING = "training"


def engine() -> Engine:
    return Engine(engine_settings(training_topic=TRAINING))


def ask_and_answer(joiner: Engine, first: int, n: int) -> list[Message]:
    """Decide ``n`` events on ``joiner``, answer every request; return the training records it emitted."""
    joiner.on_events([event(i) for i in range(first, first + n)], T0)
    requests = [
        LabelRequest.model_validate_json(r.value)
        for r in joiner.take_step().records
        if r.topic == "label-requests"
    ]
    for k, request in enumerate(requests):
        body = {"request_id": request.request_id, "label": truth(int(request.event_id[1:]))}
        assert joiner.on_label(Message("labels", 0, k, json.dumps(body).encode()), T0 + 10) is None
    return [
        Message(TRAINING, 0, 0, r.value, r.key) for r in joiner.take_step().records if r.topic == TRAINING
    ]


def apply(engine_: Engine, records: list[Message], start: int = 0) -> None:
    for offset, record in enumerate(records, start):
        assert engine_.on_training(record, offset, T0 + 20) is None


def test_a_joined_label_is_appended_not_learned_and_every_engine_learns_it_once():
    a, b = engine(), engine()
    records = ask_and_answer(a, 0, 60)
    assert records and a.model_version == 0, "the joiner learned without the log"
    apply(a, records)
    apply(b, records)
    apply(b, records, start=len(records))  # appended twice: learned once
    assert a.model_version == b.model_version == len(records)
    assert b.state.training_offset == 2 * len(records)
    probe = [json.loads(event(1000 + i).value)["features"] for i in range(50)]
    assert [a.learner.classifier.predict_proba_one(x) for x in probe] == [
        b.learner.classifier.predict_proba_one(x) for x in probe
    ]


def test_replicas_deciding_different_events_hold_the_same_model_from_the_same_log():
    a, b = engine(), engine()
    log = ask_and_answer(a, 0, 40) + ask_and_answer(b, 40, 40)  # each joins its own partition's labels
    log += ask_and_answer(a, 80, 40)
    for replica in (a, b):
        apply(replica, log)
    assert a.model_version == b.model_version == len(log)
    assert pickle.dumps(a.learner.classifier) == pickle.dumps(b.learner.classifier)


def test_the_checkpoint_keeps_the_log_position_and_the_examples_learned():
    a = engine()
    records = ask_and_answer(a, 0, 60)
    apply(a, records[:5])
    snapshot = pickle.loads(pickle.dumps(a.snapshot({}, T0, {})))
    assert snapshot.offsets == {TopicPartition(TRAINING, 0): 5}
    restored = engine()
    restored.restore(snapshot)
    assert restored.state.training_offset == 5
    apply(restored, records[:5])  # read again after the checkpoint's position: not learned again
    assert restored.model_version == 5


def test_a_label_the_model_cannot_learn_is_rejected_by_the_joiner_and_the_request_stays_open():
    a = engine()
    a.on_events([event(0)], T0)
    (request,) = [LabelRequest.model_validate_json(r.value) for r in a.take_step().records]
    bad = Message("labels", 0, 0, json.dumps({"request_id": request.request_id, "label": "x"}).encode())
    assert a.on_label(bad, T0).reason.value == "unexpected_label"
    good = Message("labels", 0, 1, json.dumps({"request_id": request.request_id, "label": True}).encode())
    assert a.on_label(good, T0) is None
    assert [r.topic for r in a.take_step().records] == [TRAINING]


def test_a_record_that_is_not_an_example_is_rejected_and_skipped_alike_everywhere():
    a = engine()
    assert a.on_training(Message(TRAINING, 0, 0, b"not json"), 0, T0).reason.value == "undecodable"
    assert a.on_training(Message(TRAINING, 0, 1, b'{"request_id": "r"}'), 1, T0).reason.value == "schema"
    assert a.state.training_offset == 2 and a.model_version == 0


@settings(max_examples=60, deadline=None)
@given(
    features=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5) | st.booleans(),
        max_size=6,
    ),
    label=st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    ask_proba=st.none() | st.floats(0.001, 1.0),
)
def test_a_record_reads_back_as_the_example_it_was_made_from_bit_for_bit(features, label, ask_proba):
    entry = PendingEntry("r", "e", features, 7, 8, "random", None, ask_proba=ask_proba)
    example = parse_example(training_record(entry, label, TRAINING).value)
    assert example.label == label and type(example.label) is type(label)
    assert list(example.entry.features.items()) == list(features.items())  # order kept: river sums in it
    assert all(type(example.entry.features[k]) is type(v) for k, v in features.items())
    assert example.entry.ask_proba == ask_proba and example.entry.decision_reason == "random"
