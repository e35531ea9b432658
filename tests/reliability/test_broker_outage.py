"""Broker outage: every connection between the service (and everyone else) and the broker is cut.

A private broker advertises a ``TcpProxy`` in front of it, so every client — the service, the event
stream, the annotator — reaches it through the proxy whatever address it bootstrapped with.
``drop_all`` resets every connection and refuses new ones for the outage. The CI outage lasts
``OUTAGE_S`` (12 s: longer than the 6 s session timeout, so the group membership is lost too);
``benchmarks/soak.py --outage 30`` runs the 30 s one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from reliability_tools import free_port, run_outage

from activestream.config import Settings
from activestream.demo.broker import EmbeddedBroker
from activestream.demo.proxy import TcpProxy
from activestream.service import Service
from activestream.transport.errors import DeliveryError
from activestream.transport.memory import MemoryBroker, MemoryProducer

OUTAGE_S = 12.0
FLUSH_ATTEMPTS = 3


@pytest.fixture
def proxied_broker() -> Iterator[tuple[EmbeddedBroker, TcpProxy]]:
    port = free_port()
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        EmbeddedBroker(port=port, advertised_port=proxy.port) as broker,
    ):
        yield broker, proxy


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["reset", "blackhole"])
def test_an_outage_turns_readiness_off_keeps_liveness_and_loses_nothing(
    proxied_broker, unique_name, tmp_path, mode
):
    """``reset``: connections reset and refused; ``blackhole``: accepted and never answered (a silent
    partition: requests wait for their timeouts, and a flush in progress with them — readiness must
    follow all the same)."""
    _, proxy = proxied_broker
    seen = run_outage(proxy, tmp_path, unique_name, OUTAGE_S, mode=mode)
    print(
        {k: v for k, v in seen.items() if k not in ("verdict", "during", "after")}, seen["verdict"].as_dict()
    )
    during = seen["during"]
    assert len(during) > 10
    assert all(healthz == 200 for _, healthz, _ in during), "liveness must not depend on the broker"
    assert seen["not_ready_after_s"] is not None and seen["not_ready_after_s"] < 5, "/readyz stayed 200"
    assert all(healthz == 200 and readyz == 200 for _, healthz, readyz in seen["after"])
    assert seen["restarts"] == 1, "the service recovered by itself, without a restart"
    verdict = seen["verdict"]
    assert verdict.problems == [], (
        verdict.as_dict()
    )  # every label learned once, the ones posted during it too
    assert verdict.labels_posted > 50 and seen["labels_during_outage"] > 0


@pytest.mark.broker
def test_an_outage_that_outlasts_a_flush_in_progress_is_waited_out(proxied_broker, unique_name, tmp_path):
    """The outage comes while the service works through a backlog, so a batch's records are in flight,
    and it outlasts ``flush_timeout_seconds``: the flush reports them unacknowledged (not failed: the
    producer retries until its delivery timeout). The loop must wait on — alive, not ready — not die
    with "service loop failed" and need a restart (it did, before the fix).

    From outside the process the cut cannot be timed to a flush: it lands where the loop happens to be.
    In a batch's work or its flush, the flush waits (the case under test); in the commit or the poll
    after a flush (1 run in about 6 with batches of 200), the commit fails or the poll finds the broker
    gone and there is nothing to flush. Batches of 1,000 make that rarer, and the scenario runs again
    (fresh topics and group) until a cut hits a flush, at most ``FLUSH_ATTEMPTS`` times; every attempt must
    keep the service up, unrestarted and exact.
    """
    _, proxy = proxied_broker
    for attempt in range(1, FLUSH_ATTEMPTS + 1):
        workdir = tmp_path / f"attempt-{attempt}"
        workdir.mkdir()
        seen = run_outage(
            proxy,
            workdir,
            unique_name,
            outage_s=8,
            backlog=80_000,  # seconds of work even for the batch-scoring loop: the cut lands mid-backlog
            cut_after_s=0.5,
            flush_timeout_seconds=1.5,
            max_poll_records=1000,
        )
        print(
            f"attempt {attempt}:",
            {k: v for k, v in seen.items() if k not in ("verdict", "during", "after")},
            seen["verdict"].as_dict(),
        )
        assert "broker unavailable" in seen["warnings"]
        assert all(healthz == 200 for _, healthz, _ in seen["during"])
        assert seen["restarts"] == 1, "the service recovered by itself, without a restart"
        assert seen["verdict"].problems == [], seen["verdict"].as_dict()
        if seen["flush_waits"] > 0:
            return
    pytest.fail(f"in {FLUSH_ATTEMPTS} attempts the outage never hit a flush in progress")


# -- the same rule on the in-memory transport --------------------------------------------------------------


class StallingProducer(MemoryProducer):
    """Reports its records unacknowledged (kept, not dropped) for ``stalls`` flushes, as kafka-python's
    producer does while the broker is away; or failed, with ``fail=True``."""

    def __init__(self, broker: MemoryBroker, stalls: int, fail: bool = False):
        super().__init__(broker)
        self.stalls, self.fail, self.flushes = stalls, fail, 0

    def flush(self, timeout_s: float) -> None:
        self.flushes += 1
        if self.stalls and self._pending:
            self.stalls -= 1
            if self.fail:
                raise DeliveryError([("label-requests", TimeoutError("delivery timeout"))])
            raise DeliveryError([], unacknowledged=len(self._pending))
        super().flush(timeout_s)


def stalled_service(tmp_path, producer_args: dict) -> tuple[Service, MemoryBroker, StallingProducer]:
    broker = MemoryBroker()
    settings = Settings(checkpoint_path=tmp_path / "state.ckpt", budget=1.0, policy="split")
    producer = StallingProducer(broker, **producer_args)
    service = Service(settings, broker.consumer(settings.group_id), producer, broker.admin())
    events = broker.producer()
    for i in range(5):
        events.produce(settings.events_topic, json.dumps({"id": f"e{i}", "features": {"x": i}}).encode())
    events.flush(1.0)
    service.start()
    return service, broker, producer


def test_unacknowledged_records_are_waited_for_not_fatal(tmp_path):
    service, broker, producer = stalled_service(tmp_path, {"stalls": 3})
    beats = []
    service.health.beat = lambda: beats.append(1)  # type: ignore[method-assign]
    while service.run_once():
        pass
    assert producer.flushes >= 4 and len(beats) >= 3  # alive while it waited
    assert len(broker.messages(service.settings.requests_topic)) == 5  # delivered in the end
    assert broker.committed(service.settings.group_id)  # and committed after


@pytest.mark.parametrize("why", ["a record failed", "a stop was requested"])
def test_a_failed_record_or_a_stop_still_ends_the_loop_without_a_checkpoint(tmp_path, why):
    service, broker, _ = stalled_service(tmp_path, {"stalls": 10, "fail": why == "a record failed"})
    if why == "a stop was requested":
        service.request_stop()
    with pytest.raises(DeliveryError):
        service.run_once()
    assert broker.committed(service.settings.group_id) == {}
