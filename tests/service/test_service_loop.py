"""The service loop end to end on the in-memory transport: no broker, no sleeps."""

from __future__ import annotations

import json
import math
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import base, naive_bayes

from activestream.checkpoint import CheckpointError, load_checkpoint
from activestream.config import ConfigError, Settings
from activestream.decide.policies import Split
from activestream.learner import ActiveLearner
from activestream.messages import DecisionRecord, LabelRequest, request_id_for
from activestream.metrics import Metric
from activestream.models import make_model
from activestream.service import DeadLetterLimitExceeded, Service
from activestream.transport.base import Message, TopicPartition
from activestream.transport.errors import DeliveryError
from activestream.transport.memory import MemoryBroker

EVENTS, LABELS = TopicPartition("events", 0), TopicPartition("labels", 0)
T0 = 1_700_000_000_000


class CountingClassifier(base.Classifier):
    """Gaussian naive Bayes that records every example it learns (pickled with the checkpoint)."""

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on
        self.inner = naive_bayes.GaussianNB()
        self.learned: list[tuple[float, object]] = []

    def learn_one(self, x, y, **kwargs):
        self.learned.append((x["x"], y))
        self.inner.learn_one(x, y)

    def predict_proba_one(self, x, **kwargs):
        if self.fail_on is not None and self.fail_on in x:
            raise TypeError("cannot take this feature")
        return self.inner.predict_proba_one(x)


def learner(budget: float = 1.0, fail_on: str | None = None) -> ActiveLearner:
    """Asks by a seeded random draw with probability ``budget`` (Split's random part only)."""
    return ActiveLearner(CountingClassifier(fail_on), policy=Split(budget, v=1.0, seed=3), seed=3)


class Harness:
    def __init__(self, tmp_path, **overrides):
        self.broker = MemoryBroker()
        self.now = T0
        options = {
            "checkpoint_path": tmp_path / "state.ckpt",
            "label_ttl_seconds": 60,
            "checkpoint_interval_seconds": 3600,
            "dead_letter_max_ratio": 1.0,
            "dead_letter_max_consecutive": 10_000,
            "max_message_bytes": 2000,
            **overrides,
        }
        self.settings = Settings(**options)
        self.producer = self.broker.producer()  # the tests' own producer (events and labels)

    def service(self, learner: ActiveLearner | None = None, **kwargs) -> Service:
        return Service(
            self.settings,
            self.broker.consumer(self.settings.group_id),
            kwargs.pop("producer", None) or self.broker.producer(),
            kwargs.pop("admin", None) or self.broker.admin(),
            learner=learner,
            clock_ms=lambda: self.now,
            **kwargs,
        )

    def send(self, topic: str, *values: bytes | None, key: bytes | None = None) -> None:
        for value in values:
            self.producer.produce(topic, value, key=key)  # type: ignore[arg-type]
        self.producer.flush(1.0)

    def send_events(self, ids) -> None:
        self.send("events", *(event(i) for i in ids))

    def requests(self) -> list[LabelRequest]:
        return [LabelRequest.model_validate_json(m.value) for m in self.broker.messages("label-requests")]

    def answer(self, requests, by: str = "request_id") -> None:
        self.send("labels", *(label_for(r, by) for r in requests))

    def dead_letters(self) -> list[Message]:
        return self.broker.messages("dead-letters")

    def committed(self) -> dict[TopicPartition, int]:
        return self.broker.committed(self.settings.group_id)


def event(i: int) -> bytes:
    return json.dumps({"id": f"e{i}", "features": {"x": float(i)}}).encode()


def label_for(request: LabelRequest, by: str = "request_id") -> bytes:
    key = request.request_id if by == "request_id" else request.event_id
    return json.dumps({by: key, "label": request.features["x"] >= 10}).encode()


def drain(service: Service) -> None:
    service.start()
    while service.run_once():
        pass


def headers(message: Message) -> dict[str, str]:
    return {k: v.decode() for k, v in message.headers}


def learned_xs(service: Service) -> list[float]:
    return [x for x, _ in service.learner.classifier.learned]


@pytest.fixture
def harness(tmp_path):
    return Harness(tmp_path)


# -- the happy path -------------------------------------------------------------------------------------


def test_events_become_requests_and_labels_are_learned(harness):
    service = harness.service(learner())
    harness.send_events(range(20))
    drain(service)
    requests = harness.requests()
    assert [r.event_id for r in requests] == [f"e{i}" for i in range(20)]
    assert all(r.request_id == request_id_for(r.event_id) for r in requests)
    assert [m.key for m in harness.broker.messages("label-requests")] == [f"e{i}".encode() for i in range(20)]
    assert requests[0].expires_at.timestamp() - requests[0].created_at.timestamp() == 60
    assert len(service.pending) == 20

    harness.answer(requests[:10], by="request_id")
    harness.answer(requests[10:], by="event_id")
    drain(service)
    assert sorted(learned_xs(service)) == [float(i) for i in range(20)]
    assert service.model_version == 20 and len(service.pending) == 0
    assert harness.dead_letters() == []
    metrics = service.metrics
    assert metrics.value(Metric.EVENTS, outcome="asked") == 20
    assert metrics.value(Metric.LABELS, status="learned") == 20
    assert metrics.value(Metric.LABEL_REQUESTS) == 20
    assert metrics.value(Metric.LABEL_DELAY, "_count") == 20
    assert not math.isnan(metrics.value(Metric.PREQUENTIAL_ACCURACY))  # every ask here is "random"
    assert metrics.value(Metric.PENDING) == 0
    assert harness.committed() == {EVENTS: 20, LABELS: 20}


def test_the_audit_trail_records_every_decision_when_configured(tmp_path):
    harness = Harness(tmp_path, decisions_topic="decisions")
    service = harness.service(learner(budget=0.5))
    harness.send_events(range(40))
    drain(service)
    records = [DecisionRecord.model_validate_json(m.value) for m in harness.broker.messages("decisions")]
    assert [r.event_id for r in records] == [f"e{i}" for i in range(40)]
    asked = {r.event_id for r in records if r.ask}
    assert asked == {r.event_id for r in harness.requests()} and 0 < len(asked) < 40
    assert {r.strategy for r in records} == {service.learner.strategy}


def test_no_audit_trail_by_default(harness):
    service = harness.service(learner())
    harness.send_events(range(5))
    drain(service)
    assert harness.broker.messages("decisions") == []
    with pytest.raises(KeyError):
        harness.broker.partitions("decisions")  # not even created


def test_the_model_version_in_requests_counts_learned_labels(harness):
    service = harness.service(learner())
    harness.send_events([0, 1])
    drain(service)
    harness.answer(harness.requests())
    drain(service)
    harness.send_events([2])
    drain(service)
    assert [r.model_version for r in harness.requests()] == [0, 0, 2]


def test_discarded_events_are_counted_not_asked(harness):
    service = harness.service(learner(budget=0.3))
    harness.send_events(range(200))
    drain(service)
    asked = service.metrics.value(Metric.EVENTS, outcome="asked")
    discarded = service.metrics.value(Metric.EVENTS, outcome="discarded")
    assert asked + discarded == 200 and 30 < asked < 90
    assert len(harness.requests()) == asked
    assert service.metrics.value(Metric.BUDGET_TARGET) == 0.3
    assert 0 < service.metrics.value(Metric.BUDGET_SPENT) <= 1


# -- bad input ----------------------------------------------------------------------------------------------


BAD_EVENTS = [
    (b"", "empty"),  # (a tombstone's None value cannot be produced through the contract)
    (b"x" * 2001, "oversize"),
    (b"\xff\xfe", "undecodable"),
    (b'{"id": "e-bad", "features": {}}', "schema"),
    (b'{"id": "e-bad", "features": {"x": NaN}}', "non_finite"),
    (event(0), "duplicate"),  # e0 was asked already
]
BAD_LABELS = [
    (b'{"label": true}', "schema"),
    (b'{"event_id": "e0", "label": {"class": 1}}', "unexpected_label"),
    (b'{"event_id": "nobody-asked", "label": true}', "unknown_request"),
    (b'{"event_id": "e1", "label": true}', "duplicate"),  # answered just before
    (b"[", "undecodable"),
]


def test_every_bad_message_is_dead_lettered_with_its_bytes_reason_and_source(harness):
    service = harness.service(learner())
    harness.send_events([0, 1])
    harness.send("labels", b'{"event_id": "e1", "label": false}')
    drain(service)
    harness.send("events", *(raw for raw, _ in BAD_EVENTS), key=b"k")
    harness.send("labels", *(raw for raw, _ in BAD_LABELS))
    harness.send_events([2])  # the service keeps going
    drain(service)

    letters = harness.dead_letters()
    assert [headers(m)["activestream.reason"] for m in letters] == [r for _, r in BAD_EVENTS + BAD_LABELS]
    for message, (raw, _) in zip(letters, BAD_EVENTS + BAD_LABELS, strict=True):
        if len(raw) > harness.settings.max_message_bytes:  # cut to fit, and the header says from what size
            assert raw.startswith(message.value) and len(message.value) <= 1500
            assert headers(message)["activestream.truncated.from"] == str(len(raw))
        else:
            assert message.value == raw and "activestream.truncated.from" not in headers(message)
        assert headers(message)["activestream.detail"]
    events_letters = letters[: len(BAD_EVENTS)]
    assert all(m.key == b"k" for m in events_letters)
    assert [int(headers(m)["activestream.source.offset"]) for m in events_letters] == list(range(2, 8))
    assert {headers(m)["activestream.source.topic"] for m in events_letters} == {"events"}
    assert {headers(m)["activestream.source.partition"] for m in letters} == {"0"}
    assert [r.event_id for r in harness.requests()] == ["e0", "e1", "e2"]
    assert learned_xs(service) == [1.0]
    m = service.metrics
    assert m.value(Metric.DEAD_LETTERS, reason="duplicate") == 2
    assert m.value(Metric.EVENTS, outcome="invalid") == len(BAD_EVENTS)
    assert m.value(Metric.LABELS, status="invalid") == 3
    assert m.value(Metric.LABELS, status="unknown") == m.value(Metric.LABELS, status="duplicate") == 1
    assert harness.committed() == {EVENTS: 9, LABELS: 6}


def test_a_duplicate_label_is_learned_once(harness):
    service = harness.service(learner())
    harness.send_events([0])
    drain(service)
    request = harness.requests()[0]
    harness.answer([request, request])
    harness.answer([request], by="event_id")
    drain(service)
    assert learned_xs(service) == [0.0]
    assert [headers(m)["activestream.reason"] for m in harness.dead_letters()] == ["duplicate", "duplicate"]


def test_a_late_label_is_dead_lettered_as_expired(harness):
    service = harness.service(learner())
    harness.send_events([0, 1])
    drain(service)
    harness.now += 61_000
    drain(service)  # the sweep on the next batch expires both
    assert service.metrics.value(Metric.PENDING_EXPIRED, reason="ttl") == 2
    harness.answer(harness.requests()[:1])
    drain(service)
    assert learned_xs(service) == []
    assert [headers(m)["activestream.reason"] for m in harness.dead_letters()] == ["expired_request"]
    assert service.metrics.value(Metric.LABELS, status="expired") == 1


def test_evicted_requests_are_counted(tmp_path):
    harness = Harness(tmp_path, pending_max=3)
    service = harness.service(learner())
    harness.send_events(range(5))
    drain(service)
    assert len(service.pending) == 3
    assert service.metrics.value(Metric.PENDING_EXPIRED, reason="evicted") == 2


def test_events_the_model_cannot_score_are_dead_lettered(harness):
    service = harness.service(learner(fail_on="boom"))
    harness.send("events", b'{"id": "e1", "features": {"x": 1, "boom": "yes"}}')
    harness.send_events([2])
    drain(service)
    assert [headers(m)["activestream.reason"] for m in harness.dead_letters()] == ["schema"]
    assert [r.event_id for r in harness.requests()] == ["e2"]


@pytest.mark.parametrize("model", ["logreg", "logreg_ovr"])
def test_a_binary_model_dead_letters_a_label_it_cannot_learn_and_says_what_to_use(harness, model):
    # Even "up" is refused by the binary logreg: only True/False/1/0 are binary labels.
    service = harness.service(ActiveLearner(make_model(model), policy=Split(1.0, v=1.0, seed=3), seed=3))
    harness.send_events(range(3))
    drain(service)
    requests = harness.requests()
    harness.send(
        "labels",
        *(
            json.dumps({"request_id": r.request_id, "label": y}).encode()
            for r, y in zip(requests, ["up", "down", "flat"], strict=True)
        ),
    )
    drain(service)
    refused = {headers(m)["activestream.detail"] for m in harness.dead_letters()}
    if model == "logreg":
        assert len(harness.dead_letters()) == 3
        assert all("binary" in detail and "logreg_ovr" in detail for detail in refused)
        assert all(headers(m)["activestream.reason"] == "unexpected_label" for m in harness.dead_letters())
    else:
        assert harness.dead_letters() == []
        assert set(service.learner.classifier.predict_proba_one({"x": 1.0})) == {"up", "down", "flat"}


def test_the_dead_letter_limit_stops_the_service_after_committing_what_it_dead_lettered(tmp_path):
    harness = Harness(tmp_path, dead_letter_max_consecutive=5)
    service = harness.service(learner())
    harness.send("events", *[b"junk"] * 6)
    with pytest.raises(DeadLetterLimitExceeded, match="6 consecutive"):
        service.run()
    assert service.metrics.value(Metric.UP) == 0
    assert len(harness.dead_letters()) == 6
    assert harness.committed() == {TopicPartition("events", 0): 6}  # a restart moves past them
    assert load_checkpoint(harness.settings.checkpoint_path).offsets[TopicPartition("events", 0)] == 6


def test_a_restart_after_the_dead_letter_limit_does_not_crash_loop(tmp_path):
    """Three restarts: every bad message dead-lettered once, every valid event behind them decided."""
    harness = Harness(tmp_path, dead_letter_max_consecutive=5)
    harness.send("events", *[b"junk"] * 6, *[event(i) for i in range(3)])
    with pytest.raises(DeadLetterLimitExceeded):
        harness.service(learner()).run()
    for _ in range(3):
        service = harness.service(learner())
        drain(service)
        service.shutdown()
    assert len(harness.dead_letters()) == 6
    assert harness.committed()[TopicPartition("events", 0)] == 9  # the valid events were handled


def test_a_label_the_model_cannot_learn_leaves_its_request_open(harness):
    service = harness.service(ActiveLearner(make_model("logreg"), policy=Split(1.0, v=1.0, seed=3), seed=3))
    harness.send_events(range(2))
    drain(service)
    [request, *_] = harness.requests()
    harness.send("labels", json.dumps({"request_id": request.request_id, "label": "yes"}).encode())
    drain(service)
    assert [headers(m)["activestream.reason"] for m in harness.dead_letters()] == ["unexpected_label"]
    assert request.request_id in service.pending and service.model_version == 0
    harness.send("labels", json.dumps({"request_id": request.request_id, "label": True}).encode())
    drain(service)
    assert len(harness.dead_letters()) == 1 and service.model_version == 1  # the correct one is learned
    assert request.request_id not in service.pending


def test_a_missing_topic_stops_the_start_when_topics_are_not_created(tmp_path):
    harness = Harness(tmp_path, create_topics=False, events_topic="typo-events")
    with pytest.raises(ConfigError, match=r"typo-events.*ACTIVESTREAM_CREATE_TOPICS=true"):
        harness.service(learner()).start()


def test_the_dead_letter_ratio_limit(tmp_path):
    harness = Harness(tmp_path, dead_letter_max_ratio=0.5, dead_letter_window=10)
    service = harness.service(learner())
    harness.send("events", *[event(0), b"junk", b"junk"] * 4)
    with pytest.raises(DeadLetterLimitExceeded, match="of the last 10"):
        service.run()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["events", "labels"]),
            st.one_of(
                st.binary(max_size=60),
                st.builds(lambda i: event(i), st.integers(0, 5)),
                st.builds(
                    lambda i, y: json.dumps({"event_id": f"e{i}", "label": y}).encode(),
                    st.integers(0, 5),
                    st.one_of(st.booleans(), st.integers(), st.floats(), st.none()),
                ),
            ),
        ),
        max_size=25,
    )
)
def test_any_input_is_either_used_or_dead_lettered(tmp_path, messages):
    # A directory per example: hypothesis reuses ``tmp_path``, and a checkpoint left by an earlier
    # example would seek the fresh broker's partitions past their messages.
    harness = Harness(Path(tempfile.mkdtemp(dir=tmp_path)))
    service = harness.service(learner())
    for topic, raw in messages:
        harness.send(topic, raw)
    drain(service)
    m = service.metrics
    used = sum(m.value(Metric.EVENTS, outcome=o) for o in ("asked", "discarded"))
    used += m.value(Metric.LABELS, status="learned")
    assert used + len(harness.dead_letters()) == len(messages)


# -- offsets, flush, checkpoints, restarts --------------------------------------------------------------


def test_offsets_are_committed_only_after_a_successful_flush(harness):
    producer = harness.broker.producer(fail_flush=True)
    service = harness.service(learner(), producer=producer)
    harness.send_events([0, 1, 2])
    service.start()
    with pytest.raises(DeliveryError):
        service.run_once()
    assert harness.committed() == {}
    assert harness.requests() == []


def test_a_failed_flush_stops_the_loop_without_a_checkpoint(harness):
    producer = harness.broker.producer(fail_flush=True)
    service = harness.service(learner(), producer=producer)
    harness.send_events([0])
    with pytest.raises(DeliveryError):
        service.run()
    assert not harness.settings.checkpoint_path.exists()
    assert harness.committed() == {}


def test_only_processed_partitions_are_committed(harness):
    service = harness.service(learner())
    harness.send_events(range(3))
    drain(service)
    assert harness.committed() == {EVENTS: 3}


def test_a_checkpoint_is_saved_on_the_interval(tmp_path):
    harness = Harness(tmp_path, checkpoint_interval_seconds=10)
    service = harness.service(learner())
    harness.send_events(range(3))
    drain(service)
    # Newly assigned partitions are checkpointed before their first commit, whatever the interval says.
    first = load_checkpoint(harness.settings.checkpoint_path)
    assert first.offsets == {EVENTS: 3, LABELS: 0} and first.created_at_ms == T0
    harness.send_events([4])
    drain(service)
    assert load_checkpoint(harness.settings.checkpoint_path).created_at_ms == T0  # not before the interval
    harness.now += 10_000
    harness.send_events([3])
    drain(service)
    state = load_checkpoint(harness.settings.checkpoint_path)
    assert state.offsets == {EVENTS: 5, LABELS: 0}  # every assigned partition, even an idle one
    assert len(state.pending) == 5 and state.created_at_ms == harness.now
    assert service.metrics.value(Metric.CHECKPOINT_TIMESTAMP) == harness.now / 1000


def test_stop_finishes_the_batch_then_flushes_checkpoints_commits_and_closes(harness):
    service = harness.service(learner())
    harness.send_events(range(5))
    thread = threading.Thread(target=service.run)
    thread.start()
    while service.metrics.value(Metric.EVENTS, outcome="asked") < 5:
        thread.join(0.01)
    service.request_stop()
    thread.join(5)
    assert not thread.is_alive()
    state = load_checkpoint(harness.settings.checkpoint_path)
    assert state.offsets == {EVENTS: 5, LABELS: 0} and len(state.pending) == 5
    assert harness.committed() == {EVENTS: 5, LABELS: 0}
    assert service.metrics.value(Metric.UP) == 0


def test_a_corrupt_checkpoint_refuses_to_start(harness):
    harness.settings.checkpoint_path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        harness.service(learner()).start()


def crash(service: Service, harness: Harness) -> None:
    """Die mid-batch: the in-flight batch's records are never delivered, nothing is checkpointed."""
    service.producer.fail_flush = True
    harness.send_events([999])
    with pytest.raises(DeliveryError):
        service.run()


@pytest.mark.parametrize("max_poll_records", [500, 3])
def test_restart_from_a_checkpoint_loses_no_label_and_learns_none_twice(tmp_path, max_poll_records):
    harness = Harness(tmp_path, checkpoint_interval_seconds=10, max_poll_records=max_poll_records)
    first = harness.service(learner())
    harness.send_events(range(20))
    drain(first)
    harness.answer(harness.requests()[:5])
    harness.now += 10_000  # the next batch checkpoints: events 0-19 asked, labels 0-4 learned
    drain(first)
    harness.send_events(range(20, 30))
    harness.answer(harness.requests()[5:15])  # learned after the checkpoint, then lost in the crash
    drain(first)
    assert sorted(learned_xs(first)) == [float(i) for i in range(15)]
    crash(first, harness)

    second = harness.service()  # its learner comes from the checkpoint
    drain(second)
    answered = {r.request_id for r in harness.requests()[:15]}
    unanswered = {r.request_id: r for r in harness.requests() if r.request_id not in answered}
    harness.answer(unanswered.values())
    drain(second)
    learned = Counter(learned_xs(second))
    assert max(learned.values()) == 1, "a label was learned twice"
    assert set(learned) == {float(i) for i in range(30)} | {999.0}, "a label was lost"
    assert harness.dead_letters() == []
    # The replay asked again under the same ids.
    ids = Counter(r.request_id for r in harness.requests())
    assert set(ids) == {request_id_for(f"e{i}") for i in [*range(30), 999]}


def test_replayed_labels_wait_for_their_replayed_events(tmp_path):
    # A label polled before the event it answers (both after the checkpoint) must not be lost.
    harness = Harness(tmp_path, checkpoint_interval_seconds=10, max_poll_records=1)
    first = harness.service(learner())
    first.start()
    harness.send_events([0])
    harness.now += 10_000
    drain(first)  # checkpoint: events at 1
    harness.send_events([1, 2, 3])
    drain(first)
    harness.answer(harness.requests()[1:])  # labels for e1..e3, learned, then the crash
    drain(first)
    crash(first, harness)

    second = harness.service()
    drain(second)
    assert Counter(learned_xs(second)) == Counter([1.0, 2.0, 3.0])
    assert harness.dead_letters() == []
    assert harness.committed()[LABELS] == 3


def test_a_revoke_checkpoints_and_commits_and_nothing_is_processed_twice(harness):
    service = harness.service(learner())
    harness.send_events(range(4))
    drain(service)
    harness.broker.force_rebalance(harness.settings.group_id)
    harness.send_events([4])
    drain(service)
    state = load_checkpoint(harness.settings.checkpoint_path)
    # Checkpointed on revoke (4), then again before the first commit after the new assignment (5).
    assert state.offsets == {EVENTS: 5, LABELS: 0}
    assert [r.event_id for r in harness.requests()] == [f"e{i}" for i in range(5)]
    assert harness.committed() == {EVENTS: 5, LABELS: 0}


def test_lost_partitions_are_not_committed_and_resume_where_the_state_is(harness):
    service = harness.service(learner())
    harness.send_events(range(3))
    drain(service)
    harness.send_events([3])
    service.run_once()  # processes e3 and commits
    checkpointed = harness.settings.checkpoint_path.stat().st_mtime_ns  # the first assignment's
    harness.broker.force_rebalance(harness.settings.group_id, lost=True)
    harness.send_events([4])
    drain(service)
    # Lost, then assigned again: our positions still cover them, so nothing new needs a checkpoint.
    assert harness.settings.checkpoint_path.stat().st_mtime_ns == checkpointed
    assert [r.event_id for r in harness.requests()] == [f"e{i}" for i in range(5)]


def test_health_and_lag_follow_the_loop(harness):
    admin = harness.broker.admin()
    service = harness.service(learner(), admin=admin)
    assert not service.health.ready()
    harness.send_events(range(3))
    drain(service)
    assert service.health.ready()
    assert service.metrics.value(Metric.CONSUMER_LAG, topic="events", partition="0") == 0
    assert service.metrics.value(Metric.UP) == 1
    admin.reachable = False
    harness.now += int(harness.settings.health_check_interval_seconds * 1000)
    drain(service)
    assert not service.health.ready()
    assert service.health.alive(max_age_s=60)


def _eventually(condition, timeout_s: float = 10.0) -> bool:
    """Whether ``condition()`` turns true within ``timeout_s`` (for the broker watch's own thread)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_readiness_follows_the_broker_while_the_loop_is_held_in_a_commit(tmp_path):
    """A commit during a silent network partition holds the loop for its whole request timeout (10 s in
    the outage tests), so the loop's own checks cannot turn readiness off: the broker watch's thread
    does. Before it, a CI run saw ``/readyz`` stay 200 through a whole 12 s outage."""
    harness = Harness(tmp_path, health_check_interval_seconds=0.05)
    admin = harness.broker.admin()
    service = harness.service(learner(), admin=admin)
    harness.send_events(range(3))
    drain(service)
    assert service.health.ready()
    held, release = threading.Event(), threading.Event()
    commit = service.consumer.commit

    def hung_commit(offsets):
        held.set()
        release.wait(30)
        commit(offsets)

    service.consumer.commit = hung_commit
    harness.send_events([3])
    loop = threading.Thread(target=service.run_once, daemon=True)
    loop.start()
    try:
        assert held.wait(10), "the loop reached the commit"
        admin.reachable = False
        assert _eventually(lambda: not service.health.ready()), "readiness followed the broker away"
        assert service.health.alive(max_age_s=60)
        admin.reachable = True
        assert _eventually(service.health.ready), "and back, the loop still held"
        assert loop.is_alive()
    finally:
        release.set()
        loop.join(10)
    assert harness.committed()[EVENTS] == 4
    service.shutdown()


def test_app_run_stops_cleanly_on_sigterm(harness, monkeypatch):
    import gc
    import logging
    import os
    import signal

    from activestream import app

    service = harness.service(learner())
    monkeypatch.setattr(app, "build_service", lambda settings: service)
    # The memory broker needs no pre-flight.
    monkeypatch.setattr(app, "check_broker", lambda settings, topics=(): None)
    root = logging.getLogger()
    saved = root.handlers[:], root.level, signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    harness.send_events(range(3))
    frozen, freeze = [], gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(freeze()))

    def stop_once_read() -> None:
        # A fixed delay raced start-up: freezing this test process's large heap can outlast it, and the
        # signal then stopped the loop before it had read anything. SIGTERM once the events are committed.
        _eventually(lambda: harness.committed().get(EVENTS) == 3, timeout_s=30)
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_once_read, daemon=True)
    stopper.start()
    try:
        app.run(harness.settings.model_copy(update={"metrics_port": 0, "metrics_host": "127.0.0.1"}))
    finally:
        stopper.join(30)
        gc.unfreeze()  # run() froze the start-up heap: give the test process's back to the collector
        root.handlers[:], root.level = saved[0], saved[1]
        signal.signal(signal.SIGTERM, saved[2])
        signal.signal(signal.SIGINT, saved[3])
    assert load_checkpoint(harness.settings.checkpoint_path).offsets[EVENTS] == 3
    assert harness.committed()[EVENTS] == 3
    assert frozen, "run() takes the start-up heap out of full collections"
