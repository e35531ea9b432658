"""The ask probability in the service: it goes with the label request into the pending store, the ask
journal and checkpoints (older ones without it still restore), and weights the labels in the accuracy
metric, the stopping criteria and the drift arms when the policy has no random share."""

from __future__ import annotations

import json
import math
import random

import pytest

from activestream.checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from activestream.config import Settings
from activestream.decide.base import Policy, Verdict
from activestream.drift import DriftAdaptiveClassifier
from activestream.engine import Record, Step
from activestream.join import JoinStatus, PendingEntry, PendingStore
from activestream.journal import Journal
from activestream.learner import ActiveLearner
from activestream.messages import DecisionRecord, LabelRequest
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.base import TopicPartition
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000


class Coin(Policy):
    """Asks every event with probability ``p`` (seeded) and reports it; ``reason`` names its asks."""

    name = "coin"

    def __init__(self, p: float = 0.5, reason: str = "informative", seed: int = 3):
        self.p, self.budget, self.reason = p, p, reason
        self._rng = random.Random(seed)

    def decide(self, score: float) -> Verdict:
        ask = self._rng.random() < self.p
        return Verdict(ask, 0.5, self.reason if ask else "below_threshold", ask_proba=self.p)

    @property
    def spending(self) -> float:
        return self.p


# -- the pending store, the journal and checkpoints ------------------------------------------------------


def test_the_pending_store_keeps_the_ask_probability_to_the_join_expiry_and_eviction():
    store = PendingStore(max_size=2, ttl_ms=100)
    store.add("r1", "e1", {"x": 1.0}, 0, "informative", True, ask_proba=0.25)
    store.add("r2", "e2", {"x": 2.0}, 0, "informative", False)  # a deterministic policy's: None
    result = store.join(now_ms=10, request_id="r1")
    assert result.status is JoinStatus.LEARNED and result.entry.ask_proba == 0.25
    assert store.find(event_id="e2").ask_proba is None
    store.add("r3", "e3", {"x": 3.0}, 5, "random", True, ask_proba=0.05)
    [evicted] = store.add("r4", "e4", {"x": 4.0}, 6, "random", True, ask_proba=0.5)
    assert evicted.entry.request_id == "r2"
    assert [e.entry.ask_proba for e in store.expire(now_ms=1000)] == [0.05, 0.5]


def a_state(pending: PendingStore) -> CheckpointState:
    return CheckpointState(
        learner=None, pending=pending, offsets={TopicPartition("events", 0): 7}, counters={"x": 0.5}
    )


def test_the_ask_probability_survives_a_checkpoint_and_the_ask_journal(tmp_path):
    pending = PendingStore(10, 1000)
    pending.add("r1", "e1", {"x": 1.0}, 0, "informative", True, ask_proba=0.125)
    save_checkpoint(tmp_path / "state.ckpt", a_state(pending))
    restored = load_checkpoint(tmp_path / "state.ckpt")
    assert restored.pending.find(request_id="r1") == pending.find(request_id="r1")
    assert restored.pending.find(request_id="r1").ask_proba == 0.125
    assert restored.counters == {"x": 0.5}

    journal = Journal(tmp_path / "state.ckpt.journal")
    journal.recover(generation=1)
    journal.append(
        Step(asks=(pending.find(request_id="r1"),), records=(Record("label-requests", b"{}", b"e1"),))
    )
    journal.close()
    [step] = Journal(journal.path).recover(generation=1)
    assert step.asks[0].ask_proba == 0.125


@pytest.fixture
def before_ask_proba(monkeypatch):
    """Pickle pending entries as the code before ``ask_proba`` did: its seven fields, nothing else."""

    def old_getstate(entry: PendingEntry) -> list:
        return [
            entry.request_id,
            entry.event_id,
            entry.features,
            entry.asked_at_ms,
            entry.expires_at_ms,
            entry.decision_reason,
            entry.predicted_label,
        ]

    monkeypatch.setattr(PendingEntry, "__getstate__", old_getstate)
    return monkeypatch


def test_an_older_checkpoint_without_the_ask_probability_restores_with_none(tmp_path, before_ask_proba):
    pending = PendingStore(10, 1000)
    pending.add("r1", "e1", {"x": 1.0}, 0, "random", "yes", ask_proba=0.125)
    save_checkpoint(tmp_path / "old.ckpt", a_state(pending))
    journal = Journal(tmp_path / "old.ckpt.journal")
    journal.recover(generation=1)
    journal.append(Step(asks=(pending.find(request_id="r1"),)))
    journal.close()
    before_ask_proba.undo()  # the current code loads them

    entry = load_checkpoint(tmp_path / "old.ckpt").pending.find(request_id="r1")
    assert entry.ask_proba is None
    assert (entry.request_id, entry.event_id, entry.decision_reason, entry.predicted_label) == (
        "r1",
        "e1",
        "random",
        "yes",
    )
    assert entry.expires_at_ms == 1000
    [step] = Journal(journal.path).recover(generation=1)
    assert step.asks[0].ask_proba is None and step.asks[0].event_id == "e1"


def test_a_state_with_too_many_values_is_refused():
    entry = PendingEntry.__new__(PendingEntry)
    with pytest.raises(TypeError, match="at most"):
        entry.__setstate__(["r", "e", {}, 0, 1, "random", None, 0.5, "extra"])


# -- the loop ------------------------------------------------------------------------------------------------


class Loop:
    """A service around a given learner; every label request is answered from ``x >= 10``."""

    def __init__(self, tmp_path, **overrides):
        self.broker = MemoryBroker()
        self.producer = self.broker.producer()
        options = {
            "checkpoint_path": tmp_path / "state.ckpt",
            "checkpoint_interval_seconds": 3600,
            "decisions_topic": "decisions",
            "decisions_discard_sample_ratio": 1.0,
            **overrides,
        }
        self.settings = Settings(**options)
        self.answered = 0

    def service(self, learner: ActiveLearner | None = None) -> Service:
        service = Service(
            self.settings,
            self.broker.consumer(self.settings.group_id),
            self.broker.producer(),
            self.broker.admin(),
            learner=learner,
            clock_ms=lambda: T0,
        )
        service.start()
        return service

    def send_events(self, service: Service, ids) -> None:
        for i in ids:
            self.producer.produce("events", json.dumps({"id": f"e{i}", "features": {"x": float(i)}}).encode())
        self.producer.flush(1.0)
        drain(service)

    def requests(self) -> list[LabelRequest]:
        return [LabelRequest.model_validate_json(m.value) for m in self.broker.messages("label-requests")]

    def records(self) -> list[DecisionRecord]:
        return [DecisionRecord.model_validate_json(m.value) for m in self.broker.messages("decisions")]

    def answer(self, service: Service) -> None:
        requests = self.requests()[self.answered :]
        for request in requests:
            label = {"request_id": request.request_id, "label": request.features["x"] >= 10}
            self.producer.produce("labels", json.dumps(label).encode())
        self.answered += len(requests)
        self.producer.flush(1.0)
        drain(service)


def drain(service: Service) -> None:
    while service.run_once():
        pass


def coin_learner(p: float = 0.5, reason: str = "informative") -> ActiveLearner:
    classifier = DriftAdaptiveClassifier("gnb", seed=1, min_estimate=5)
    return ActiveLearner(classifier, measure="margin", policy=Coin(p, reason), seed=1)


def test_without_a_random_share_the_loop_weights_every_label(tmp_path):
    loop = Loop(tmp_path)
    service = loop.service(coin_learner(0.5))
    loop.send_events(service, range(40))
    requests, records = loop.requests(), loop.records()
    assert 10 < len(requests) < 30
    assert {r.ask_probability for r in requests} == {0.5}  # in the label request
    assert len(records) == 40 and {r.ask_probability for r in records} == {0.5}  # and in the audit trail
    assert {service.pending.find(request_id=r.request_id).ask_proba for r in requests} == {0.5}

    metrics = service.metrics
    assert math.isnan(metrics.value(Metric.PREQUENTIAL_ACCURACY))  # no label yet
    loop.answer(service)
    assert service.model_version == len(requests)
    assert metrics.accuracy_source == "ipw" and 0.0 <= metrics.value(Metric.PREQUENTIAL_ACCURACY) <= 1.0
    assert metrics.accuracy_counts == (0, 0)  # no random label
    assert metrics.weighted_accuracy_counts[1:] == (2.0 * len(requests), len(requests))
    assert len(service.stopping._weighted_outcomes) == len(requests)
    arms = service.learner.classifier
    assert arms._active.accuracy.counts["ipw"] == len(requests) and arms.status().estimate == "ipw"

    # A restart restores the weighted counts from the checkpoint.
    before = metrics.value(Metric.PREQUENTIAL_ACCURACY), metrics.weighted_accuracy_counts
    service.request_stop()
    service.shutdown()
    state = load_checkpoint(loop.settings.checkpoint_path)
    assert state.counters["prequential_ipw_judged"] == len(requests)
    restarted = loop.service()
    after = restarted.metrics.value(Metric.PREQUENTIAL_ACCURACY), restarted.metrics.weighted_accuracy_counts
    assert after == before


def test_a_deterministic_policy_leaves_the_metric_without_an_estimate(tmp_path):
    loop = Loop(tmp_path)
    learner = ActiveLearner(DriftAdaptiveClassifier("gnb", seed=1), policy="fixed", budget=1.0, seed=1)
    service = loop.service(learner)
    loop.send_events(service, range(20))
    loop.answer(service)
    assert service.model_version > 0
    assert {r.ask_probability for r in loop.records()} == {None}
    assert service.metrics.accuracy_source is None
    assert math.isnan(service.metrics.value(Metric.PREQUENTIAL_ACCURACY))
    assert service.stopping.estimate_source is None


def test_while_paused_the_random_requests_carry_no_probability(tmp_path):
    loop = Loop(tmp_path, stop_on_plateau=True)
    service = loop.service(coin_learner(0.5, reason="random"))
    service.stopping.paused_by = "plateau"  # as if the plateau had paused it
    loop.send_events(service, range(20))
    requests = loop.requests()
    assert requests and all(r.reason == "random" for r in requests)  # random asks still go out...
    assert {r.ask_probability for r in requests} == {None}  # ...not with the policy's probability
    assert {r.ask_probability for r in loop.records()} == {None}
    loop.answer(service)
    assert service.metrics.accuracy_counts[1] == len(requests)  # the random sample counts
    assert service.metrics.weighted_accuracy_counts == (0.0, 0.0, 0)  # nothing is weighted
    service.resume_label_requests()
    loop.send_events(service, range(20, 30))
    assert {r.ask_probability for r in loop.requests()[len(requests) :]} == {0.5}


class Broken(Coin):
    """A policy bug: asks every event "with probability 0"."""

    def decide(self, score):
        return Verdict(True, 0.5, "informative", ask_proba=0.0)


def test_an_impossible_ask_probability_is_dropped_not_fatal(tmp_path):
    loop = Loop(tmp_path)
    service = loop.service(ActiveLearner(DriftAdaptiveClassifier("gnb", seed=1), policy=Broken(), seed=1))
    loop.send_events(service, range(5))
    assert {r.ask_probability for r in loop.requests()} == {None}
    loop.answer(service)
    assert service.model_version == 5 and loop.broker.messages("dead-letters") == []
