"""Several replicas, one model: with a training topic every replica learns every label, in the same order.

Two or three replicas of the real default learner (drift arms around the scaled logistic regression) share
4-partition events and labels topics on the in-memory broker; an annotator answers each request by its
event id (the label lands on the event's partition, which the asking replica owns). At the end every
replica holds the same model: the same version and the same predictions on a probe set, each label
learned once — also after a replica is killed and restarted from its checkpoint, and for a replica that
joins late and reads the log from its start.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from river import datasets

from activestream.config import ConfigError, Settings
from activestream.engine.state import APPLIED
from activestream.messages import LabelRequest
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.errors import BrokerUnavailable
from activestream.transport.memory import MemoryBroker

PARTITIONS = 4
PROBE = [x for x, _ in datasets.synth.SEA(seed=7).take(200)]


class Cluster:
    """Replicas on one in-memory broker and an annotator answering every request at once."""

    def __init__(self, tmp_path, n_events: int = 1200, label_partitions: int = PARTITIONS, **overrides):
        self.broker, self.tmp, self.now = MemoryBroker(), tmp_path, 1_700_000_000_000
        self.options = {
            "budget": 0.2,
            "training_topic": "training",
            "checkpoint_interval_seconds": 3600,
            "label_ttl_seconds": 3600,
            "seed": 5,
            **overrides,
        }
        self.broker.admin().ensure_topics(["events"], partitions=PARTITIONS)
        self.broker.admin().ensure_topics(["labels"], partitions=label_partitions)
        self.producer = self.broker.producer()
        self.truth: dict[str, bool] = {}
        for i, (x, y) in enumerate(datasets.synth.SEA(seed=1).take(n_events)):
            self.truth[f"e{i}"] = bool(y)
            body = json.dumps({"id": f"e{i}", "features": x}).encode()
            self.producer.produce("events", body, key=f"e{i}".encode())
        self.producer.flush(1.0)
        self.answered = 0

    def replica(self, name: str) -> Service:
        settings = Settings(**self.options, checkpoint_path=self.tmp / f"{name}.ckpt")
        service = Service(
            settings,
            self.broker.consumer(settings.group_id),
            self.broker.producer(),
            self.broker.admin(),
            reader=self.broker.reader(),
            clock_ms=lambda: self.now,
        )
        service.start()
        return service

    def answer(self) -> int:
        """Answer the requests not answered yet, keyed by event id; return how many."""
        requests = self.broker.messages("label-requests")[self.answered :]
        for message in requests:
            request = LabelRequest.model_validate_json(message.value)
            label = {"event_id": request.event_id, "label": self.truth[request.event_id]}
            self.producer.produce("labels", json.dumps(label).encode(), key=request.event_id.encode())
        self.producer.flush(1.0)
        self.answered += len(requests)
        return len(requests)

    def run(self, replicas: list[Service], rounds: int = 1000) -> None:
        """Run the replicas in turn until nothing moves (no message, no request, the log learned)."""
        for _ in range(rounds):
            self.now += 100
            moved = sum(service.run_once() for service in replicas) + self.answer()
            log_end = len(self.broker.messages("training"))
            if not moved and all(s.engine.state.training_offset == log_end for s in replicas):
                return
        raise AssertionError("the replicas did not settle")

    def training_records(self, kind: str | None = None) -> list[dict]:
        """The training log's records of one ``kind``: ``None`` (examples), ``"ask"`` or ``"label"``."""
        records = [json.loads(m.value) for m in self.broker.messages("training")]
        return [r for r in records if r.get("kind") == kind]

    def training_ids(self) -> list[str]:
        """The request ids of the examples on the training log."""
        return [r["request_id"] for r in self.training_records()]


def same_model(replicas: list[Service]) -> None:
    versions = {service.model_version for service in replicas}
    assert len(versions) == 1, f"model versions differ: {versions}"
    probas = [[service.learner.classifier.predict_proba_one(x) for x in PROBE] for service in replicas]
    assert all(p == probas[0] for p in probas[1:]), "the replicas' models predict differently"


def test_every_replica_learns_every_label_once_and_holds_the_same_model(tmp_path):
    cluster = Cluster(tmp_path)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    asked = Counter(json.loads(m.value)["request_id"] for m in cluster.broker.messages("label-requests"))
    assert asked and set(asked.values()) == {1}
    appended = Counter(cluster.training_ids())
    assert appended == asked, "each answered request is appended to the training log exactly once"
    assert a.model_version == len(asked), "a replica learned only its own partitions' labels"
    same_model([a, b])
    for service in (a, b):
        assert service.engine.state.applied.count(APPLIED) == len(asked)
    # Each replica counted the labels it joined, so the group's count is their sum.
    learned = [service.metrics.value(Metric.LABELS, status="learned") for service in (a, b)]
    assert sum(learned) == len(asked) and all(learned)
    a.shutdown()
    b.shutdown()


def test_a_killed_replica_restarts_from_its_checkpoint_and_catches_up_to_the_same_model(tmp_path):
    cluster = Cluster(tmp_path, max_poll_records=40)  # checkpoints at the assignments only
    # b joins first: range assignment gives the restarted a its own partitions back (2 and 3). Pending
    # requests stay with the replica that asked: a label whose partition moved is ``unknown_request``.
    b, a = cluster.replica("b"), cluster.replica("a")
    for _ in range(9):  # part of the stream, with checkpoints on the way
        cluster.now += 700
        a.run_once(), b.run_once(), cluster.answer()
    # SIGKILL: a is abandoned (no checkpoint, no commit, no LeaveGroup); its successor removes it.
    cluster.broker.admin().remove_members(a.settings.group_id, [a.consumer.member_id()])
    back = cluster.replica("a")  # from its last checkpoint and journal: learns the log's tail again
    assert back.engine.state.training_offset < len(cluster.training_ids()), "nothing to catch up"
    cluster.run([back, b])
    appended = cluster.training_ids()
    assert len(appended) == len(set(appended)), "a label joined before the kill was appended again"
    assert back.model_version == b.model_version == len(appended)
    same_model([back, b])
    asked = {json.loads(m.value)["request_id"] for m in cluster.broker.messages("label-requests")}
    reasons = Counter(dict(m.headers)["activestream.reason"] for m in cluster.broker.messages("dead-letters"))
    assert set(appended) == asked and not reasons, f"labels lost: {len(asked) - len(appended)}, {reasons}"
    back.shutdown()
    b.shutdown()


def test_a_late_replica_reads_the_log_from_its_start(tmp_path):
    cluster = Cluster(tmp_path, n_events=600)
    a = cluster.replica("a")
    cluster.run([a])
    late = cluster.replica("late")  # no checkpoint: the log from offset 0
    cluster.run([a, late])
    assert late.model_version == a.model_version == len(cluster.training_ids()) > 0
    same_model([a, late])
    a.shutdown()
    late.shutdown()


def test_a_label_the_model_cannot_learn_is_dead_lettered_by_the_joiner_and_never_appended(tmp_path):
    cluster = Cluster(tmp_path, n_events=50)
    a = cluster.replica("a")
    cluster.answered = 10**9  # the annotator is silent: the test answers
    cluster.run([a])
    request = LabelRequest.model_validate_json(cluster.broker.messages("label-requests")[0].value)
    cluster.producer.produce("labels", json.dumps({"event_id": request.event_id, "label": "maybe"}).encode())
    cluster.producer.flush(1.0)
    cluster.run([a])
    assert cluster.training_ids() == []
    (letter,) = cluster.broker.messages("dead-letters")
    assert dict(letter.headers)["activestream.reason"] == b"unexpected_label"
    a.shutdown()


def test_a_training_topic_needs_a_reader_a_topic_of_its_own_and_one_partition(tmp_path):
    broker = MemoryBroker()
    settings = Settings(training_topic="training", checkpoint_path=tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="reader"):
        Service(settings, broker.consumer("g"), broker.producer())
    with pytest.raises(ValueError, match="five different topics"):
        Settings(training_topic="labels")
    broker.admin().ensure_topics(["training"], partitions=3)
    service = Service(
        settings, broker.consumer("g"), broker.producer(), broker.admin(), reader=broker.reader()
    )
    with pytest.raises(ConfigError, match="ACTIVESTREAM_TRAINING_TOPIC: topic training has 3 partitions"):
        service.start()


class OutageOnce:
    """A consumer whose next ``poll`` raises ``BrokerUnavailable`` once ``armed`` (then polls normally)."""

    def __init__(self, consumer):
        self.consumer, self.armed = consumer, False

    def poll(self, timeout_s, max_records):
        if self.armed:
            self.armed = False
            raise BrokerUnavailable("cut")
        return self.consumer.poll(timeout_s, max_records)

    def __getattr__(self, name):
        return getattr(self.consumer, name)


def test_examples_read_before_an_outage_are_read_again_not_skipped(tmp_path):
    cluster = Cluster(tmp_path, n_events=600, poll_timeout_seconds=0.01)
    a = cluster.replica("a")
    cluster.run([a])  # a joined and appended every label
    settings = Settings(**cluster.options, checkpoint_path=tmp_path / "late.ckpt")
    consumer = OutageOnce(cluster.broker.consumer(settings.group_id))
    late = Service(settings, consumer, cluster.broker.producer(), reader=cluster.broker.reader())
    late.start()
    consumer.armed = True  # its first batch reads the log, then the poll for events fails
    assert late.run_once() == 0 and late.model_version == 0
    cluster.run([a, late])
    assert late.model_version == a.model_version == len(cluster.training_ids()) > 0
    same_model([a, late])
    a.shutdown()
    late.shutdown()
