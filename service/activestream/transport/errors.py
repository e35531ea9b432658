"""The exceptions transports raise. The loop catches these, never kafka-python's own.

- ``TransportError``: base class; any failure talking to the broker that is not one of the below
  (e.g. a commit rejected because the group rebalanced, an authorization failure, a bad topic name).
- ``BrokerUnavailable``: the broker could not be reached or did not answer in time (connection
  refused, bootstrap or request timeout, no coordinator). Transient: retrying later may succeed.
- ``DeliveryError``: records handed to ``Producer.produce`` were not acknowledged. Raised by
  ``Producer.flush`` (and by ``produce`` for a record that can never be sent, e.g. one larger than
  the maximum message size). ``failures`` lists ``(topic, exception)`` per failed record, in the order
  they failed; ``unacknowledged`` counts records still in flight when ``flush`` gave up.

Exceptions raised by the loop's own rebalance callbacks are *not* wrapped: they propagate unchanged.

>>> err = DeliveryError([("events", TimeoutError("expired"))])
>>> isinstance(err, TransportError), err.failures[0][0]
(True, 'events')
>>> str(err)
"1 record(s) not delivered; first failure on topic 'events': TimeoutError: expired"
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BrokerUnavailable", "DeliveryError", "TransportError"]


class TransportError(Exception):
    """A failure talking to the message broker."""


class BrokerUnavailable(TransportError):
    """The broker could not be reached, or did not answer within the timeout."""


class DeliveryError(TransportError):
    """Produced records were not acknowledged by the broker."""

    def __init__(
        self,
        failures: Sequence[tuple[str, BaseException]] = (),
        unacknowledged: int = 0,
        message: str | None = None,
    ) -> None:
        self.failures: list[tuple[str, BaseException]] = list(failures)
        self.unacknowledged = unacknowledged
        if message is None:
            parts = []
            if self.failures:
                topic, exc = self.failures[0]
                parts.append(
                    f"{len(self.failures)} record(s) not delivered; first failure on topic {topic!r}: "
                    f"{type(exc).__name__}: {exc}"
                )
            if unacknowledged:
                parts.append(f"{unacknowledged} record(s) not acknowledged within the timeout")
            message = "; ".join(parts) or "delivery failed"
        super().__init__(message)
