"""Pending requests belong to the group: with a training topic, any replica joins any label.

Each request is appended to the training log before it reaches the annotators, and a label whose request
the replica that reads it does not hold is appended too; every replica joins the two in the log's order.
So a label is learned whichever partition it lands on (labels produced with no key, spread round-robin,
as a non-murmur2 partitioner would), and the outstanding requests of a replica that died or lost its
partitions are answered through whichever replica reads their labels. Two replicas of the real default
learner on the in-memory broker, 4-partition topics.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter

from test_training_log_loop import Cluster, same_model

from activestream.engine.state import APPLIED
from activestream.messages import LabelRequest
from activestream.metrics import Metric


class AnyPartition(Cluster):
    """An annotator that answers with no key (round-robin over the labels partitions), keyed by event id
    (on the event's partition) when ``keyed``, or not at all while ``silent``."""

    silent = keyed = False

    def answer(self) -> int:
        if self.silent:
            return 0
        requests = self.broker.messages("label-requests")[self.answered :]
        for message in requests:
            request = LabelRequest.model_validate_json(message.value)
            label = {"event_id": request.event_id, "label": self.truth[request.event_id]}
            key = request.event_id.encode() if self.keyed else None
            self.producer.produce("labels", json.dumps(label).encode(), key=key)
        self.producer.flush(1.0)
        self.answered += len(requests)
        return len(requests)

    def asked(self) -> set[str]:
        return {json.loads(m.value)["request_id"] for m in self.broker.messages("label-requests")}

    def dead_letters(self) -> Counter:
        return Counter(dict(m.headers)["activestream.reason"] for m in self.broker.messages("dead-letters"))


def learned_once_by_all(cluster: AnyPartition, replicas) -> None:
    asked = cluster.asked()
    assert asked and not cluster.dead_letters(), f"labels dead-lettered: {cluster.dead_letters()}"
    for service in replicas:
        applied = service.engine.state.applied
        assert service.model_version == applied.count(APPLIED) == len(asked), "a label lost or learned twice"
        assert len(service.pending) == 0, "an answered request left open in its asker's store"
    same_model(replicas)


def test_labels_landing_on_any_partition_are_learned_once_by_every_replica(tmp_path):
    cluster = AnyPartition(tmp_path)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    learned_once_by_all(cluster, [a, b])
    kinds = Counter(json.loads(m.value).get("kind", "example") for m in cluster.broker.messages("training"))
    assert kinds["ask"] == len(cluster.asked()) and kinds["label"] > 0, kinds
    # Each replica counts the labels it read and joined (itself or through the log): their sum is the group's.
    counted = [s.metrics.value(Metric.LABELS, status="learned") for s in (a, b)]
    assert sum(counted) == len(cluster.asked()) and all(counted)
    # The stopping criteria see the group: the same requests counted, the same stabilising sample.
    assert a.stopping.asked == b.stopping.asked == len(cluster.asked())
    assert pickle.dumps(a.stopping) == pickle.dumps(b.stopping), "the replicas' stopping criteria differ"
    a.shutdown()
    b.shutdown()


def test_the_labels_topic_may_have_another_partition_count_than_the_events_topic(tmp_path):
    cluster = AnyPartition(tmp_path, n_events=600, label_partitions=3)
    cluster.keyed = True  # keyed by event id, but 3 partitions against the events' 4: most land elsewhere
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    learned_once_by_all(cluster, [a, b])
    assert len(cluster.training_records("label")) > 0
    a.shutdown()
    b.shutdown()


def test_a_killed_replicas_outstanding_requests_are_answered_through_its_successor(tmp_path):
    cluster = AnyPartition(tmp_path, max_poll_records=60)
    cluster.keyed = cluster.silent = True  # each label on its event's partition, once the annotator answers
    a, b = cluster.replica("a"), cluster.replica("b")
    for _ in range(8):  # part of the stream; nobody answers yet
        cluster.now += 700
        a.run_once(), b.run_once()
    outstanding = len(a.pending)
    assert outstanding > 20
    # SIGKILL of a: abandoned (no checkpoint, no commit); b takes every partition.
    cluster.broker.admin().remove_members(a.settings.group_id, [a.consumer.member_id()])
    cluster.silent = False
    cluster.run([b])  # b decides the rest; the annotator now answers every request, a's included
    learned_once_by_all(cluster, [b])
    assert len(cluster.training_records("label")) >= outstanding, (
        "a's requests were not joined through the log"
    )
    back = cluster.replica("a")  # a returns from its checkpoint and catches up from the log
    cluster.run([back, b])
    learned_once_by_all(cluster, [back, b])
    back.shutdown()
    b.shutdown()


def test_scaling_out_moves_partitions_without_losing_their_pending_labels(tmp_path):
    cluster = AnyPartition(tmp_path, n_events=800)
    cluster.keyed = cluster.silent = True
    a = cluster.replica("a")
    cluster.run([a])  # every event decided by a alone; every request outstanding
    outstanding = len(a.pending)
    b = cluster.replica("b")  # 1 -> 2: half the partitions, and their labels, move to b
    cluster.silent = False
    cluster.run([a, b])
    assert outstanding > 100 and len(cluster.training_records("label")) > outstanding / 4, (
        "b joined none of a's"
    )
    learned_once_by_all(cluster, [a, b])
    a.shutdown()
    b.shutdown()


def test_a_label_joining_nothing_is_dead_lettered_once_by_the_replica_that_read_it(tmp_path):
    cluster = AnyPartition(tmp_path, n_events=200)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    request = LabelRequest.model_validate_json(cluster.broker.messages("label-requests")[0].value)
    for body in (
        {"event_id": "never-asked", "label": True},
        {"request_id": request.request_id, "label": True},  # answered already: a duplicate
    ):
        for partition_key in (b"k1", b"k2", b"k3", b"k4"):  # whichever replica reads it
            cluster.producer.produce("labels", json.dumps(body).encode(), key=partition_key)
    cluster.producer.flush(1.0)
    cluster.run([a, b])
    assert cluster.dead_letters() == {b"unknown_request": 4, b"duplicate": 4}
    assert a.model_version == b.model_version == len(cluster.asked())
    a.shutdown()
    b.shutdown()


def test_max_labels_caps_the_group_not_each_replica(tmp_path):
    cluster = AnyPartition(tmp_path, n_events=1200, max_labels=40, max_poll_records=10)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    per_replica = [s.metrics.value(Metric.LABEL_REQUESTS) for s in (a, b)]
    # Each replica counts the other's requests once it reads them from the log: the group overshoots by
    # at most the requests of a batch not read yet (10 events a batch), not by another 40.
    print(f"requests per replica: {per_replica}")
    assert all(per_replica) and 40 <= sum(per_replica) <= 40 + 2 * 10, per_replica
    assert a.stopping.asked == b.stopping.asked == sum(per_replica)
    learned_once_by_all(cluster, [a, b])
    a.shutdown()
    b.shutdown()


class FlushSpy:
    """A producer that records, at each flush, the topics of the records it sends."""

    def __init__(self, producer):
        self.producer, self.sent, self.flushes = producer, [], []

    def produce(self, topic, value, key=None, headers=()):
        self.sent.append(topic)
        self.producer.produce(topic, value, key, headers)

    def flush(self, timeout_s):
        self.flushes.append(self.sent)
        self.sent = []
        self.producer.flush(timeout_s)

    def close(self):
        self.producer.close()


def test_a_request_goes_out_only_once_the_log_holds_it(tmp_path):
    cluster = AnyPartition(tmp_path, n_events=300, max_poll_records=50)
    a = cluster.replica("a")
    spy = a.producer = a._dead_letters.producer = FlushSpy(a.producer)
    cluster.run([a])
    with_requests = [i for i, topics in enumerate(spy.flushes) if "label-requests" in topics]
    assert with_requests, "no request was made"
    for i in with_requests:  # the flush before it sent the log's records of the same batch
        assert set(spy.flushes[i - 1]) == {"training"} and "training" not in spy.flushes[i]
    a.shutdown()


class Voters(AnyPartition):
    """Three annotators answer every request, with no key (their votes land on any partition); the third
    is wrong on every fifth event, so some ballots disagree."""

    def answer(self) -> int:
        requests = self.broker.messages("label-requests")[self.answered :]
        for message in requests:
            request = LabelRequest.model_validate_json(message.value)
            truth = self.truth[request.event_id]
            for name in ("ann0", "ann1", "ann2"):
                wrong = name == "ann2" and int(request.event_id[1:]) % 5 == 0
                label = {"event_id": request.event_id, "label": truth != wrong, "annotator": name}
                self.producer.produce("labels", json.dumps(label).encode())
        self.producer.flush(1.0)
        self.answered += len(requests)
        return len(requests)


def test_votes_read_by_any_replica_are_tallied_alike_and_each_consensus_learned_once(tmp_path):
    cluster = Voters(tmp_path, n_events=800, annotators_per_request=3)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    asked = cluster.asked()
    assert asked and not cluster.dead_letters(), f"votes dead-lettered: {cluster.dead_letters()}"
    assert len(cluster.training_records("label")) == 3 * len(asked), "a vote not tallied through the log"
    for service in (a, b):
        assert service.model_version == service.engine.state.applied.count(APPLIED) == len(asked)
        assert len(service.pending) == 0 and len(service.engine.state.group.ballots) == 0
    same_model([a, b])
    # Each vote counted by the replica that read it; each disagreement reported once, by the asker.
    counted = [s.metrics.value(Metric.LABELS, status="learned") for s in (a, b)]
    assert sum(counted) == 3 * len(asked) and all(counted)
    events = {json.loads(m.value)["event_id"] for m in cluster.broker.messages("label-requests")}
    disagreements = sum(s.metrics.value(Metric.LABEL_DISAGREEMENTS) for s in (a, b))
    assert 0 < disagreements == sum(int(e[1:]) % 5 == 0 for e in events)
    history = [s.engine.state.group.ballots.history for s in (a, b)]
    assert pickle.dumps(history[0]) == pickle.dumps(history[1]), "the replicas judge the annotators alike"
    assert history[0].raw_agreement("ann2") < history[0].raw_agreement("ann0") == 1.0
    a.shutdown()
    b.shutdown()


class TwoOfThree(Voters):
    """Only two of the three annotators asked for answer: each ballot waits for its timeout."""

    def answer(self) -> int:
        requests = self.broker.messages("label-requests")[self.answered :]
        for message in requests:
            request = LabelRequest.model_validate_json(message.value)
            for name in ("ann0", "ann1"):
                label = {
                    "event_id": request.event_id,
                    "label": self.truth[request.event_id],
                    "annotator": name,
                }
                self.producer.produce("labels", json.dumps(label).encode())
        self.producer.flush(1.0)
        self.answered += len(requests)
        return len(requests)


def test_a_ballot_times_out_on_the_logs_clock_alike_on_every_replica(tmp_path):
    cluster = TwoOfThree(
        tmp_path, n_events=800, annotators_per_request=3, aggregation_timeout_seconds=0.3, max_poll_records=20
    )  # (the loop's clock moves 0.1 s a round; 20 rounds to decide every event)
    a, b = cluster.replica("a"), cluster.replica("b")
    cluster.run([a, b])
    asked = cluster.asked()
    open_ballots = len(a.engine.state.group.ballots)
    # The log's clock moves with its records: the ballots of the last requests wait for the next ones.
    assert a.model_version + open_ballots == len(asked) and a.model_version > 0.8 * len(asked)
    same_model([a, b])
    assert pickle.dumps(a.engine.state.group) == pickle.dumps(b.engine.state.group)
    a.shutdown()
    b.shutdown()
