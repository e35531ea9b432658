"""What the loop reports about itself and the broker (``Monitoring``): batch metrics, liveness, the
broker's reachability and the consumer's lag, between batches and while a flush waits through an outage.

Readiness follows the broker even while the loop is held in a client call: a ``BrokerWatch`` thread
checks it then (see :mod:`activestream.health`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from activestream.config import Settings
from activestream.engine import Engine
from activestream.health import BrokerWatch, Health
from activestream.partitions import Partitions
from activestream.transport.base import Admin, Consumer
from activestream.transport.errors import TransportError

__all__ = ["Monitoring"]

# The loop's logger: its lines keep the name they had when this was part of service.py (JSON logs carry it).
log = logging.getLogger("activestream.service")

# The broker check must not hold the loop up for long: it runs on the loop's thread.
_REACHABILITY_TIMEOUT_S: Final = 2.0


class Monitoring:
    """Batch metrics, heartbeats and broker checks for the loop (see the module docstring).

    Without ``admin`` the broker counts as reachable after a flush. ``end_replay`` is the loop's: called
    when a partition at the end of its log has nothing left to replay.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        consumer: Consumer,
        admin: Admin | None,
        partitions: Partitions,
        health: Health,
        timer: Callable[[], float],
        end_replay: Callable[[], None],
    ):
        self._settings, self._engine, self._consumer = settings, engine, consumer
        self._partitions, self._health, self._timer, self._end_replay = partitions, health, timer, end_replay
        self._metrics = engine.metrics
        self._broker_watch = (
            BrokerWatch(
                admin.is_reachable,
                health,
                settings.health_check_interval_seconds,
                _REACHABILITY_TIMEOUT_S,
            )
            if admin is not None
            else None
        )
        self._last_check_ms: int | None = None

    def start(self) -> None:
        if self._broker_watch is not None:
            self._broker_watch.start()

    def stop(self) -> None:
        if self._broker_watch is not None:
            self._broker_watch.stop()

    def after_batch(self, now_ms: int, started: float) -> None:
        """Count the batch, report the engine's gauges, beat; check the broker when the interval passed."""
        self._metrics.batch(self._timer() - started)
        self._engine.report()
        self._health.beat()
        last = self._last_check_ms
        if last is None or now_ms - last >= self._settings.health_check_interval_seconds * 1000:
            self._last_check_ms = now_ms
            self.check_broker()

    def waiting(self) -> None:
        """A flush waits through an outage: the loop is alive, and readiness follows the broker."""
        self._health.beat()
        self.check_broker()

    def check_broker(self) -> None:
        if self._broker_watch is None:
            self._health.set_broker_reachable(True)
        elif not self._broker_watch.check():
            return
        try:
            lags = self._consumer.lag()
        except TransportError as error:
            log.debug("lag not measured", extra={"error": str(error)})
            return
        self._metrics.lag({tp: lag for tp, lag in lags.items() if tp in self._partitions.assigned})
        for tp, lag in lags.items():  # at the end of the log: nothing left to replay
            if lag == 0 and self._partitions.caught_up(tp):
                self._end_replay()
