"""Flushing the producer through a broker outage, with the loop's health kept current meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable

from activestream.transport.base import Producer
from activestream.transport.errors import DeliveryError

__all__ = ["flush_patiently"]

log = logging.getLogger(__name__)


def flush_patiently(
    producer: Producer,
    timeout_s: float,
    slice_s: float,
    stop_requested: Callable[[], bool],
    meanwhile: Callable[[], None],
) -> None:
    """Wait until every record produced is acknowledged.

    While the broker is away the records are only *unacknowledged*: the producer keeps retrying them
    (until its delivery timeout, when they fail), so this waits on instead of failing when an outage
    outlasts ``timeout_s``. It waits in slices of at most ``slice_s`` and calls ``meanwhile`` between
    them (the loop beats and checks the broker, so that ``/readyz`` follows the broker and ``/healthz``
    stays up). A failed record, or a stop requested and ``timeout_s`` over, raises ``DeliveryError``.
    """
    slice_s = min(timeout_s, slice_s)
    waited_s = 0.0
    while True:
        try:
            producer.flush(slice_s)
            return
        except DeliveryError as error:
            waited_s += slice_s
            if error.failures or not error.unacknowledged:
                raise
            if waited_s >= timeout_s:
                if stop_requested():
                    raise
                log.warning("broker unavailable", extra={"error": str(error), "waited_s": waited_s})
                waited_s = 0.0
            meanwhile()
