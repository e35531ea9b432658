"""Liveness and readiness: what the loop and the broker watch observed, for ``/healthz`` and ``/readyz``.

- Alive: the loop completed a batch (or an idle poll) recently. It never depends on the broker, so a
  broker outage does not get the process restarted in a loop.
- Ready: partitions are assigned and the broker answered the last probe.

Two writers keep readiness true to the broker. The loop records what its own calls observe (a poll that
found the broker gone, a probe between batches). But the loop can be held inside one client call for the
call's whole request timeout (in the outage tests, a commit during a silent network partition waited 10 s
for kafka-python to give up on the connection), and readiness must follow the broker meanwhile:
:class:`BrokerWatch` probes it from its own thread every ``health_check_interval_seconds``.

>>> health = Health(clock=lambda: 100.0)
>>> health.alive(max_age_s=60.0), health.ready()
(True, False)
>>> health.set_assigned(True)
>>> health.set_broker_reachable(True)
>>> health.ready()
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BrokerWatch", "Health"]

log = logging.getLogger(__name__)


class Health:
    """What the loop and the broker watch last observed, shared with the HTTP thread.

    Parameters
    ----------
    clock
        Monotonic seconds; the loop's heartbeat is stamped with it. Construction counts as a beat, so the
        service is alive while it starts (restoring a large checkpoint takes a while).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()
        self._assigned = False
        self._reachable = False

    def beat(self) -> None:
        """The loop is alive: it just completed a batch (or an idle poll)."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def set_assigned(self, assigned: bool) -> None:
        with self._lock:
            self._assigned = assigned

    def set_broker_reachable(self, reachable: bool) -> None:
        with self._lock:
            self._reachable = reachable

    def alive(self, max_age_s: float) -> bool:
        with self._lock:
            return self._clock() - self._last_beat <= max_age_s

    def ready(self) -> bool:
        with self._lock:
            return self._assigned and self._reachable

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seconds_since_beat": round(self._clock() - self._last_beat, 3),
                "partitions_assigned": self._assigned,
                "broker_reachable": self._reachable,
            }


class BrokerWatch:
    """Probes the broker on a daemon thread whenever no probe ran for ``interval_s``; records the answer.

    The loop calls ``check`` between batches, every ``interval_s`` while it makes progress; the thread
    then has nothing to do. It probes only when the loop has not for a whole interval — held in a client
    call — so the broker is never asked twice for the same answer.

    Parameters
    ----------
    probe
        ``probe(timeout_s)`` is True when the broker answered within ``timeout_s`` (``Admin.is_reachable``:
        bounded, never raises).
    health
        Where the answer goes.
    interval_s
        The longest time without a probe. The thread's first probe comes one interval after ``start``
        at the earliest; until then the loop's own checks decide, which keeps tests of the loop
        deterministic.
    timeout_s
        How long one probe may wait for the broker.
    clock
        Monotonic seconds.

    ``check`` probes once on the caller's thread; a probe that raises counts as unreachable:

    >>> now = [0.0]
    >>> health = Health(clock=lambda: now[0])
    >>> answers = iter([True, False])
    >>> watch = BrokerWatch(lambda timeout_s: next(answers), health, interval_s=10.0, clock=lambda: now[0])
    >>> watch.check(), health.snapshot()["broker_reachable"]
    (True, True)
    >>> now[0] = 4.0; watch.seconds_until_due()  # the loop checked 4 s ago: the thread waits 6 s more
    6.0
    >>> watch.check(), health.snapshot()["broker_reachable"]
    (False, False)
    >>> now[0] = 15.0; watch.seconds_until_due()  # no check for 11 s: the thread probes now
    0.0
    >>> watch.check()  # the iterator is exhausted: the probe raises StopIteration
    False
    """

    def __init__(
        self,
        probe: Callable[[float], bool],
        health: Health,
        interval_s: float,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be > 0")
        self._probe = probe
        self._health = health
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._last_check = clock()  # start counts as a check: the loop checks after its first batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Probe the broker now, record and return the answer (a failing probe counts as unreachable)."""
        try:
            reachable = bool(self._probe(self._timeout_s))
        except Exception as error:  # the contract says it never raises; readiness must not die if it does
            log.warning("broker probe failed", extra={"error": repr(error)})
            reachable = False
        self._health.set_broker_reachable(reachable)
        self._last_check = self._clock()
        return reachable

    def seconds_until_due(self) -> float:
        """How long until the thread must probe, if nobody checks before."""
        return max(0.0, self._last_check + self._interval_s - self._clock())

    def start(self) -> BrokerWatch:
        """Start the thread (once; a stopped watch stays stopped)."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="activestream-broker-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, join_timeout_s: float = 0.1) -> None:
        """Stop probing. A probe in flight is not waited for (it is bounded, and the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds_until_due()):
            if self.seconds_until_due() == 0.0:
                self.check()
