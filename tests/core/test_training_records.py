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
from activestream.metrics import Metric
from activestream.transport.base import Message, TopicPartition

TRAINING = "training"


def engine() -> Engine:
    return Engine(engine_settings(training_topic=TRAINING))


def ask_and_answer(joiner: Engine, first: int, n: int) -> list[Message]:
    """Decide ``n`` events on ``joiner``, answer every request; return the training records it emitted
    (its requests, then its examples)."""
    joiner.on_events([event(i) for i in range(first, first + n)], T0)
    records = joiner.take_step().records
    requests = [LabelRequest.model_validate_json(r.value) for r in records if r.topic == "label-requests"]
    for k, request in enumerate(requests):
        body = {"request_id": request.request_id, "label": truth(int(request.event_id[1:]))}
        assert joiner.on_label(Message("labels", 0, k, json.dumps(body).encode()), T0 + 10) is None
    records += joiner.take_step().records
    return [Message(TRAINING, 0, 0, r.value, r.key) for r in records if r.topic == TRAINING]


def examples(records: list[Message]) -> int:
    """How many of the training records are labeled examples (not requests)."""
    return sum(b'"kind"' not in r.value for r in records)


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
    assert a.model_version == b.model_version == examples(records) > 0
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
    assert a.model_version == b.model_version == examples(log)
    assert pickle.dumps(a.learner.classifier) == pickle.dumps(b.learner.classifier)


def test_the_checkpoint_keeps_the_log_position_and_the_examples_learned():
    a = engine()
    records = ask_and_answer(a, 0, 60)
    k = len(records) - examples(records) + 5  # every request, and 5 examples
    apply(a, records[:k])
    snapshot = pickle.loads(pickle.dumps(a.snapshot({}, T0, {})))
    assert snapshot.offsets == {TopicPartition(TRAINING, 0): k}
    restored = engine()
    restored.restore(snapshot)
    assert restored.state.training_offset == k and len(restored.state.group) == k - 10
    apply(restored, records[:k])  # read again after the checkpoint's position: not learned again
    assert restored.model_version == 5


def test_a_label_the_model_cannot_learn_is_rejected_by_the_joiner_and_the_request_stays_open():
    a = engine()
    a.on_events([event(0)], T0)
    records = a.take_step().records
    (request,) = [LabelRequest.model_validate_json(r.value) for r in records if r.topic != TRAINING]
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


# -- pending requests belong to the group -------------------------------------------------------------


def label_for(request: LabelRequest, offset: int, **extra) -> Message:
    body = {"event_id": request.event_id, "label": truth(int(request.event_id[1:])), **extra}
    return Message("labels", 1, offset, json.dumps(body).encode())


def asked(asker: Engine, first: int, n: int) -> tuple[list[LabelRequest], list[Message]]:
    """Decide ``n`` events on ``asker``; its requests, and its training records (the asks)."""
    asker.on_events([event(i) for i in range(first, first + n)], T0)
    records = asker.take_step().records
    requests = [LabelRequest.model_validate_json(r.value) for r in records if r.topic == "label-requests"]
    return requests, [Message(TRAINING, 0, 0, r.value) for r in records if r.topic == TRAINING]


def test_a_label_read_by_another_replica_is_joined_through_the_log_by_every_replica_alike():
    a, b = Engine(engine_settings(training_topic=TRAINING), replica="a"), engine()
    b.trainer.replica = "b"
    requests, log = asked(a, 0, 60)
    assert len(log) == len(requests) > 5, "every request goes to the log"
    for k, request in enumerate(requests):  # the labels land where b reads them
        assert b.on_label(label_for(request, k), T0 + 5) is None
    log += [Message(TRAINING, 0, 0, r.value) for r in b.take_step().records]
    assert all(b'"kind":"label"' in m.value for m in log[len(requests) :])
    for replica in (a, b):
        apply(replica, log)
    assert a.model_version == b.model_version == len(requests)
    assert pickle.dumps(a.learner.classifier) == pickle.dumps(b.learner.classifier)
    assert len(a.state.pending) == 0, "the asker's requests answered elsewhere stay open"
    counted = [r.metrics.value(Metric.LABELS, status="learned") for r in (a, b)]
    assert counted == [0, len(requests)], "the replica that read the labels counts them, once"


def test_a_label_that_joins_nothing_in_the_log_is_dead_lettered_by_its_reader_only():
    a, b = Engine(engine_settings(training_topic=TRAINING), replica="a"), engine()
    b.trainer.replica = "b"
    requests, log = asked(a, 0, 20)
    late = label_for(requests[0], 1)
    b.on_label(label_for(requests[0], 0), T0 + 5)  # answered
    b.on_label(late, T0 + 6)  # answered twice (another message)
    b.on_label(Message("labels", 1, 2, b'{"event_id": "never-asked", "label": true}'), T0 + 7)
    b.on_label(label_for(requests[1], 3), T0 + 86_400_001)  # past the TTL (a day after it was asked)
    log += [Message(TRAINING, 0, 0, r.value) for r in b.take_step().records]
    log += log[-4:-3]  # the first label appended again (read again after a rebalance): joined once
    for replica in (a, b):
        apply(replica, log)
        assert replica.model_version == 1
    assert a.rejected_labels() == []
    rejected = [(source[2], why.reason.value) for source, why in b.rejected_labels()]
    assert rejected == [(1, "duplicate"), (2, "unknown_request"), (3, "expired_request")]


def test_the_groups_requests_expire_on_the_logs_clock_and_survive_a_checkpoint():
    a = engine()
    requests, log = asked(a, 0, 30)
    apply(a, log)
    assert len(a.state.group) == len(requests)
    restored = engine()
    restored.restore(pickle.loads(pickle.dumps(a.snapshot({}, T0, {}))))
    assert len(restored.state.group) == len(requests) and restored.state.log_clock_ms == T0
    later, more = asked(a, 1000, 30)
    day, later_day = str(T0).encode(), str(T0 + 86_400_000).encode()
    day_later = [Message(TRAINING, 0, 0, m.value.replace(day, later_day)) for m in more]
    apply(restored, day_later, start=len(log))
    assert len(restored.state.group) == len(later), "the requests a day older are still open"
