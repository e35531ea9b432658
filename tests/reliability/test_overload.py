"""Overload: annotators slower than the requests, and floods of labels.

The pending store must stay bounded (the oldest requests are evicted, or expire), every request must be
accounted for exactly once (learned, pending, evicted or expired — counted in
``activestream_pending_expired_total{reason}``), late labels must be dead-lettered, not learned; and a
flood of labels must be learned at a useful rate (the rate is printed; ``benchmarks/soak.py`` reports
it too).
"""

from __future__ import annotations

import json
import time

from activestream.config import Settings
from activestream.decide.policies import Split
from activestream.learner import ActiveLearner
from activestream.messages import REASON_HEADER, LabelRequest
from activestream.metrics import Metric
from activestream.models import make_model
from activestream.service import Service
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000


class Run:
    def __init__(self, tmp_path, **overrides):
        self.broker = MemoryBroker()
        self.now = T0
        self.settings = Settings(
            checkpoint_path=tmp_path / "state.ckpt",
            checkpoint_interval_seconds=3600,
            dead_letter_max_ratio=1.0,
            dead_letter_max_consecutive=10**9,
            **overrides,
        )
        learner = ActiveLearner(make_model("logreg"), policy=Split(1.0, v=1.0, seed=1), seed=1)  # asks all
        s = self.settings
        self.service = Service(
            s,
            self.broker.consumer(s.group_id),
            self.broker.producer(),
            self.broker.admin(),
            learner=learner,
            clock_ms=lambda: self.now,
        )
        self.service.start()
        self.producer = self.broker.producer()
        self.read = 0  # label requests read by the annotators so far

    def events(self, ids, step_ms: int = 0) -> None:
        for i in ids:
            self.producer.produce(
                self.settings.events_topic,
                json.dumps({"id": f"e{i}", "features": {"x": i % 7, "y": i % 3}}).encode(),
            )
        self.producer.flush(1.0)
        self.drain(step_ms)

    def drain(self, step_ms: int = 0) -> None:
        while self.service.run_once():
            self.now += step_ms
            assert len(self.service.pending) <= self.settings.pending_max
            assert self.metric(Metric.PENDING) <= self.settings.pending_max

    def new_requests(self) -> list[LabelRequest]:
        messages = self.broker.messages(self.settings.requests_topic)
        new, self.read = messages[self.read :], len(messages)
        return [LabelRequest.model_validate_json(m.value) for m in new]

    def answer(self, requests) -> None:
        for r in requests:
            label = {"request_id": r.request_id, "label": r.features["x"] > 3}
            self.producer.produce(self.settings.labels_topic, json.dumps(label).encode())
        self.producer.flush(1.0)

    def metric(self, metric: Metric, **labels: str) -> float:
        return self.service.metrics.value(metric, **labels) or 0.0

    def dead_letters(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for m in self.broker.messages(self.settings.dead_letter_topic):
            reason = dict(m.headers)[REASON_HEADER].decode()
            reasons[reason] = reasons.get(reason, 0) + 1
        return reasons


def test_slow_annotators_the_pending_store_stays_bounded_and_every_request_is_accounted_for(tmp_path):
    run = Run(tmp_path, pending_max=500, label_ttl_seconds=60, max_poll_records=100)
    answered = 0
    for block in range(50):  # 100 events every 1 s of simulated time, 5000 in all
        run.events(range(block * 100, (block + 1) * 100), step_ms=1000)
        requests = run.new_requests()
        run.answer(requests[:5])  # annotators keep up with 5% only...
        answered += 5
        late = requests[5:10]  # ...and 5% more come back far too late
        run.drain()
        if block % 10 == 9:
            run.now += 70_000  # past the TTL of everything pending: a sweep at the next batch
        run.pending_late = getattr(run, "pending_late", []) + late
    run.answer(run.pending_late)  # labels for requests that were evicted or expired long ago
    run.events(range(5000, 5001))  # one more batch: the sweep and the late labels
    service = run.service
    asked = run.metric(Metric.LABEL_REQUESTS)
    evicted = run.metric(Metric.PENDING_EXPIRED, reason="evicted")
    expired = run.metric(Metric.PENDING_EXPIRED, reason="ttl")
    assert asked == 5001
    assert evicted > 0 and expired > 0  # both bounds were hit
    assert service.model_version == answered  # only the timely labels were learned
    assert asked == service.model_version + len(service.pending) + evicted + expired  # each exactly once
    # Late labels are dead-lettered, never learned: "expired" while the store remembers the request
    # (a bounded memory of pending_max closed ids), "unknown" once it forgot it.
    late = run.metric(Metric.LABELS, status="expired") + run.metric(Metric.LABELS, status="unknown")
    assert late == len(run.pending_late)
    dead = run.dead_letters()
    assert set(dead) <= {"expired_request", "unknown_request"} and sum(dead.values()) == len(run.pending_late)
    assert dead["expired_request"] == run.metric(Metric.LABELS, status="expired") > 0
    assert len(service.pending.closed) <= service.pending.closed_max  # the closed-id memory is bounded too


def test_a_flood_of_labels_is_learned_at_a_useful_rate(tmp_path):
    n = 20_000
    run = Run(tmp_path, pending_max=n, max_poll_records=500)
    run.events(range(n))
    requests = run.new_requests()
    assert len(requests) == n
    run.answer(requests)
    started = time.perf_counter()
    run.drain()
    took = time.perf_counter() - started
    rate = n / took
    print(f"learned {n} labels in {took:.2f} s: {rate:,.0f} labels/s (logreg, in-memory transport)")
    assert run.service.model_version == n
    assert len(run.service.pending) == 0
    assert run.metric(Metric.LABELS, status="learned") == n
    assert rate > 1000, "learning cannot keep up with a human-scale label stream"
