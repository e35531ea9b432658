"""Drift inside the loop, on the in-memory transport: both arms learn the labels the service gets, the
detector's drifts reach /metrics, and a restart restores both arms and the label-free signal."""

from __future__ import annotations

import itertools
import json
import math

from river import datasets

from activestream.checkpoint import load_checkpoint
from activestream.config import Settings
from activestream.messages import LabelRequest
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000
DRIFT_AT = 1500


def sea_with_one_drift():
    """SEA whose concept flips (every label inverted) at ``DRIFT_AT``: an abrupt, large drift."""
    for i, (x, y) in enumerate(datasets.synth.SEA(variant=0, seed=1).take(2 * DRIFT_AT)):
        yield f"e{i}", {str(k): v for k, v in x.items()}, y != (i >= DRIFT_AT)


class Loop:
    """A service whose every label request is answered at once from ground truth."""

    def __init__(self, tmp_path, **overrides):
        self.broker = MemoryBroker()
        self.producer = self.broker.producer()
        options = {
            "model": "gnb",
            "policy": "split",
            "budget": 0.5,
            "seed": 1,
            "checkpoint_interval_seconds": 3600,
        }
        self.settings = Settings(checkpoint_path=tmp_path / "state.ckpt", **{**options, **overrides})
        self.truth: dict[str, bool] = {}
        self.answered = 0

    def service(self) -> Service:
        service = Service(
            self.settings,
            self.broker.consumer(self.settings.group_id),
            self.broker.producer(),
            self.broker.admin(),
            clock_ms=lambda: T0,
        )
        service.start()
        return service

    def run(self, service: Service, events) -> None:
        for chunk in iter(lambda: list(itertools.islice(events, 100)), []):
            for event_id, x, y in chunk:
                self.truth[event_id] = y
                self.producer.produce("events", json.dumps({"id": event_id, "features": x}).encode())
            self.producer.flush(1.0)
            drain(service)
            self.answer()
            drain(service)

    def answer(self) -> None:
        requests = self.broker.messages("label-requests")[self.answered :]
        for message in requests:
            request = LabelRequest.model_validate_json(message.value)
            label = {"event_id": request.event_id, "label": self.truth[request.event_id]}
            self.producer.produce("labels", json.dumps(label).encode(), key=message.key)
        self.answered += len(requests)
        self.producer.flush(1.0)


def drain(service: Service) -> None:
    while service.run_once():
        pass


def test_both_arms_learn_the_labels_and_the_drift_reaches_the_metrics(tmp_path):
    loop = Loop(tmp_path)
    service = loop.service()
    loop.run(service, sea_with_one_drift())
    status = service.watch.status()
    assert status.drifts >= 1 and status.drift_positions[0] > DRIFT_AT * 0.5 * 0.9  # in labels, after it
    assert status.n_labeled == service.model_version == loop.answered
    assert status.n_unbiased > 0  # Split's random asks reach the arms as the unbiased sample
    m = service.metrics
    assert m.value(Metric.DRIFTS, arm="active", detector="adwin") == status.drifts
    assert not math.isnan(m.value(Metric.LAST_DRIFT_TIMESTAMP))
    assert m.value(Metric.SERVING_ARM, arm="active") + m.value(Metric.SERVING_ARM, arm="passive") == 1
    assert 0.5 < m.value(Metric.ARM_ACCURACY, arm="active") <= 1.0
    assert m.value(Metric.LABELS_SINCE_DRIFT) == status.labels_since_drift < status.n_labeled
    assert m.value(Metric.LABEL_FREE_ALARMS) is not None


def test_a_restart_restores_both_arms_and_the_label_free_signal(tmp_path):
    loop = Loop(tmp_path)
    service = loop.service()
    events = sea_with_one_drift()
    loop.run(service, itertools.islice(events, 2000))
    before = service.watch.status()
    service.request_stop()
    service.shutdown()
    state = load_checkpoint(loop.settings.checkpoint_path)
    assert state.learner.classifier.status() == before and state.drift_signal is not None

    restarted = loop.service()
    assert restarted.watch.status() == before
    assert restarted.watch.label_free.n_alarms == state.drift_signal.n_alarms
    loop.run(restarted, events)
    assert restarted.watch.status().n_labeled == loop.answered  # every label learned once, across both


def test_without_adaptation_there_are_no_arms(tmp_path):
    loop = Loop(tmp_path, adaptation="none", label_free_detector="")
    service = loop.service()
    loop.run(service, itertools.islice(sea_with_one_drift(), 300))
    assert service.watch.status() is None and service.watch.label_free is None
    assert service.metrics.value(Metric.ARM_ACCURACY, arm="active") is None
    assert service.model_version == loop.answered > 0
