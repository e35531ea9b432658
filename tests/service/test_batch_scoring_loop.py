"""The loop's batch scoring (``batch_scoring=auto``) does exactly what the event-by-event loop does."""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activestream.config import Settings
from activestream.messages import LabelRequest
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000
OUTPUTS = ("label-requests", "dead-letters", "decisions")


def _event(rng: random.Random, i: int) -> bytes:
    kind = rng.random()
    features = {f"f{j}": rng.gauss(0, 1) for j in range(4) if rng.random() < 0.9} or {"f0": 0.0}
    if kind < 0.05:
        return b"not json"
    if kind < 0.08:
        return b"  "  # empty
    if kind < 0.12:
        features["colour"] = rng.choice(["red", "blue"])  # one-hot: per event
    if kind < 0.14:
        return json.dumps({"id": f"e{i}", "features": {"x": "NaN"}, "metadata": {"k": "v"}}).encode()
    event_id = f"e{rng.randrange(i + 1)}" if rng.random() < 0.05 else f"e{i}"  # some duplicate ids
    return json.dumps({"id": event_id, "features": features}).encode()


def _run(mode: str, seed: int, steps: int, overrides: dict) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as workdir:
        return _run_in(Path(workdir), mode, seed, steps, overrides)


def _run_in(workdir: Path, mode: str, seed: int, steps: int, overrides: dict) -> tuple[dict, dict]:
    broker = MemoryBroker()
    options = {
        "checkpoint_path": workdir / "state.ckpt",
        "checkpoint_interval_seconds": 3600,
        "dead_letter_max_ratio": 1.0,
        "dead_letter_max_consecutive": 10_000,
        "decisions_topic": "decisions",
        "batch_scoring": mode,
        "seed": seed,
        **overrides,
    }
    s = Settings(**options)
    now = [T0]
    service = Service(
        s,
        broker.consumer(s.group_id),
        broker.producer(),
        broker.admin(),
        clock_ms=lambda: now[0],
        timer=lambda: 0.0,
    )
    service.start()
    producer = broker.producer()
    rng = random.Random(seed)
    answered = 0
    for step in range(steps):
        for i in range(rng.randrange(60)):
            producer.produce("events", _event(rng, step * 100 + i), None)
        requests = broker.messages("label-requests")
        for message in requests[answered:]:  # labels interleave with the next events
            if rng.random() < 0.7:
                request = LabelRequest.model_validate_json(message.value)
                label = request.features.get("f0", 0.0) > 0 if rng.random() < 0.95 else "other"
                producer.produce(
                    "labels", json.dumps({"request_id": request.request_id, "label": label}).encode()
                )
            if rng.random() < 0.3:
                producer.produce("events", _event(rng, step * 100 + 99), None)
        answered = len(requests)
        if rng.random() < 0.1:
            producer.produce("labels", b"{}")
        producer.flush(1)
        now[0] += 1000
        while service.run_once():
            pass
    outputs = {topic: [(m.key, m.value, m.headers) for m in broker.messages(topic)] for topic in OUTPUTS}
    metrics = {
        name: service.metrics.value(metric, **labels)
        for name, metric, labels in [
            ("asked", Metric.EVENTS, {"outcome": "asked"}),
            ("discarded", Metric.EVENTS, {"outcome": "discarded"}),
            ("invalid", Metric.EVENTS, {"outcome": "invalid"}),
            ("requests", Metric.LABEL_REQUESTS, {}),
            ("learned", Metric.LABELS, {"status": "learned"}),
            ("threshold", Metric.THRESHOLD, {}),
            ("spent", Metric.BUDGET_SPENT, {}),
            ("pending", Metric.PENDING, {}),
        ]
    }
    metrics = {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}
    metrics["model_version"] = service.model_version
    metrics["committed"] = broker.committed(s.group_id)
    service.shutdown()
    return outputs, metrics


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1000),
    overrides=st.sampled_from(
        [
            {},
            {"model": "gnb"},
            {"measure": "entropy", "policy": "biqf", "budget": 0.3},
            {"adaptation": "none", "measure": "random"},
            {"pending_max": 5, "budget": 0.5},  # asks evict: duplicate checks follow each event
            {"selection_mode": "batch", "batch_window": 7},
            {"label_free_detector": "adwin", "drift_boost_factor": 2.0, "boost_on_label_free_alarm": True},
            {"decisions_topic": ""},  # no audit trail: a discard stays a policy's verdict
            {"decisions_topic": "", "measure": "entropy", "policy": "biqf", "max_categories": 1},
        ]
    ),
)
def test_batch_scoring_changes_nothing_but_speed(seed, overrides):
    by_event = _run("off", seed, steps=6, overrides=overrides)
    by_batch = _run("auto", seed, steps=6, overrides=overrides)
    assert by_batch[1] == by_event[1]
    for topic in OUTPUTS:
        assert by_batch[0][topic] == by_event[0][topic], topic


def test_batch_mode_reports_its_spending():
    _, metrics = _run("auto", 1, steps=3, overrides={"selection_mode": "batch", "batch_window": 10})
    assert metrics["requests"] > 0
    assert 0.0 < metrics["spent"] <= 1.0


def test_a_runs_processing_time_counts_once_per_event():
    from activestream.metrics import Metrics

    one, many = Metrics(), Metrics()
    for _ in range(5):
        one.processing(0.003)
    many.processing(0.003, 5)
    samples = [("_count", {}), ("_sum", {}), *(("_bucket", {"le": le}) for le in ("0.0025", "0.005", "+Inf"))]
    for suffix, labels in samples:
        want = one.value(Metric.PROCESSING_DURATION, suffix, **labels)
        assert want is not None
        assert many.value(Metric.PROCESSING_DURATION, suffix, **labels) == pytest.approx(want)
