"""Metrics names and bounds, and the HTTP endpoints on an ephemeral port."""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from activestream.health import Health
from activestream.http import HttpServer
from activestream.metrics import MAX_LABEL_CLASSES, METRIC_NAMES, Metric, Metrics
from activestream.transport.base import TopicPartition


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def scrape(metrics: Metrics) -> dict[str, list]:
    """Samples (without ``_created``) by family name, parsed the way Prometheus parses them."""
    families = text_string_to_metric_families(metrics.render().decode())
    return {f.name: [s for s in f.samples if not s.name.endswith("_created")] for f in families}


def get(server: HttpServer, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


@pytest.fixture
def served():
    metrics, clock = Metrics(dead_letter_reasons=["schema"]), FakeClock()
    health = Health(clock=clock)
    with HttpServer(metrics, health, host="127.0.0.1", port=0, liveness_timeout_s=30.0) as server:
        yield server, metrics, health, clock


def test_metric_names_are_listed_once_and_exported():
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES)) == len(Metric)
    metrics = Metrics()
    metrics.build_info("1.0", "logreg", "entropy", "split")
    exported = metrics.render().decode()
    for name in METRIC_NAMES:
        assert name.startswith("activestream_")
        assert f"# TYPE {name} " in exported, name


def test_counters_are_exactly_the_total_names():
    # Prometheus naming: a counter's name ends in _total, and nothing else's does.
    exported = Metrics().render().decode()
    for name in METRIC_NAMES:
        kind = "counter" if name.endswith("_total") else "(gauge|histogram)"
        assert re.search(rf"^# TYPE {name} {kind}$", exported, re.MULTILINE), name


def test_counters_start_at_zero_for_every_fixed_label():
    samples = scrape(Metrics(dead_letter_reasons=["schema", "oversize"]))
    events = {
        s.labels["outcome"]: s.value for s in samples["activestream_events"] if s.name.endswith("_total")
    }
    assert events == {"asked": 0.0, "discarded": 0.0, "invalid": 0.0}
    reasons = {s.labels["reason"] for s in samples["activestream_dead_letters"]}
    assert reasons == {"schema", "oversize"}


def test_lag_series_follow_the_assignment():
    metrics = Metrics()
    metrics.lag({TopicPartition("events", 0): 5, TopicPartition("events", 1): 7})
    metrics.lag({TopicPartition("events", 1): 2})  # partition 0 was revoked
    assert metrics.value(Metric.CONSUMER_LAG, topic="events", partition="0") is None
    assert metrics.value(Metric.CONSUMER_LAG, topic="events", partition="1") == 2
    metrics.forget_partitions({TopicPartition("events", 1)})
    assert "activestream_consumer_lag{" not in metrics.render().decode()


def test_class_balance_is_bounded():
    metrics = Metrics()
    for i in range(MAX_LABEL_CLASSES + 10):
        metrics.learned(f"class-{i}", delay_s=1.0)
    metrics.learned("class-0", delay_s=1.0)
    labels = {
        s.labels["label"] for s in scrape(metrics)["activestream_asked_labels"] if s.name.endswith("_total")
    }
    assert len(labels) == MAX_LABEL_CLASSES + 1 and "other" in labels
    assert metrics.value(Metric.ASKED_LABELS, label="other") == 10
    assert metrics.value(Metric.ASKED_LABELS, label="class-0") == 2
    assert metrics.value(Metric.LABEL_DELAY, "_count") == MAX_LABEL_CLASSES + 11


def test_prequential_accuracy_is_nan_until_judged():
    metrics = Metrics()
    assert math.isnan(metrics.value(Metric.PREQUENTIAL_ACCURACY))
    metrics.judged(True)
    metrics.judged(False)
    metrics.judged(True)
    assert metrics.value(Metric.PREQUENTIAL_ACCURACY) == pytest.approx(2 / 3)
    assert metrics.accuracy_counts == (2, 3)


def test_checkpoint_age_is_computed_at_scrape_time():
    clock = FakeClock(1000.0)
    metrics = Metrics(clock=clock)
    assert math.isnan(metrics.value(Metric.CHECKPOINT_AGE))
    metrics.checkpoint_saved(990.0)
    clock.now = 1005.0
    assert metrics.value(Metric.CHECKPOINT_AGE) == 15.0
    assert metrics.value(Metric.CHECKPOINT_TIMESTAMP) == 990.0


def test_metrics_use_their_own_registry():
    from prometheus_client import REGISTRY

    Metrics().event("asked")
    assert REGISTRY.get_sample_value("activestream_events_total", {"outcome": "asked"}) is None


def test_metrics_endpoint_serves_the_prometheus_text_format(served):
    server, metrics, _, _ = served
    metrics.event("asked")
    metrics.dead_letter("schema")
    status, body, content_type = get(server, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    asked = [s for s in families["activestream_events"].samples if s.labels.get("outcome") == "asked"]
    assert asked[0].name == "activestream_events_total" and asked[0].value == 1.0
    assert families["activestream_dead_letters"].type == "counter"
    assert server.port > 0


def test_healthz_follows_the_loop_heartbeat(served):
    server, _, health, clock = served
    assert get(server, "/healthz")[0] == 200  # starting counts as alive
    clock.now += 31
    status, body, _ = get(server, "/healthz")
    assert status == 503 and json.loads(body)["ok"] is False
    health.beat()
    assert get(server, "/healthz")[0] == 200


def test_readyz_needs_partitions_and_a_reachable_broker(served):
    server, _, health, _ = served
    assert get(server, "/readyz")[0] == 503
    health.set_assigned(True)
    assert get(server, "/readyz")[0] == 503
    health.set_broker_reachable(True)
    status, body, _ = get(server, "/readyz")
    assert status == 200 and json.loads(body)["partitions_assigned"] is True
    health.set_broker_reachable(False)
    assert get(server, "/readyz")[0] == 503


def test_readiness_does_not_affect_liveness(served):
    server, _, health, _ = served
    health.set_broker_reachable(False)
    assert get(server, "/healthz")[0] == 200


def test_unknown_paths_are_404(served):
    assert get(served[0], "/nope")[0] == 404


def test_metrics_carry_the_process_and_platform_collectors():
    # Restarts (process_start_time_seconds) and memory (process_resident_memory_bytes) are visible.
    families = scrape(Metrics())
    assert "python_info" in families
    if "process_start_time_seconds" not in families:  # ProcessCollector reads /proc: Linux only
        pytest.skip("no /proc on this platform")
    assert families["process_resident_memory_bytes"][0].value > 0


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/nope"])
def test_head_is_answered_like_get_without_a_body(served, path):
    server = served[0]
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, body, length = response.status, response.read(), response.headers["Content-Length"]
    except urllib.error.HTTPError as error:
        status, body, length = error.code, error.read(), error.headers["Content-Length"]
    assert status == get(server, path)[0]
    assert body == b"" and int(length) > 0
