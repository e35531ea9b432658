"""librdkafka's errors as the transport's exceptions (``transport.errors``): retriable or connectivity ones
become ``BrokerUnavailable``, invalid configuration ``ValueError``, the others ``TransportError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from confluent_kafka import KafkaError, KafkaException

from activestream.transport.errors import BrokerUnavailable, TransportError

__all__ = ["error_of", "translate", "translate_error", "translating"]

#: Errors that mean "the broker is not there (yet)": retrying later may succeed.
_UNAVAILABLE: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


def error_of(exc: BaseException) -> KafkaError | None:
    """The ``KafkaError`` a ``KafkaException`` carries, if any."""
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def translate_error(error: KafkaError, action: str) -> Exception:
    """Map a librdkafka error to the transport's exceptions (see ``transport.errors``).

    >>> translate_error(KafkaError(KafkaError._ALL_BROKERS_DOWN), "polling")
    BrokerUnavailable('polling: _ALL_BROKERS_DOWN: Local: All broker connections are down')
    """
    detail = f"{action}: {error.name()}: {error.str()}"
    code = error.code()
    if code in (KafkaError._INVALID_ARG, KafkaError._INVALID_TYPE):
        return ValueError(detail)
    if code in _UNAVAILABLE or (error.retriable() and not error.fatal()):
        return BrokerUnavailable(detail)
    return TransportError(detail)


def translate(exc: KafkaException, action: str) -> Exception:
    """``translate_error`` of the error ``exc`` carries (``TransportError`` when it carries none)."""
    error = error_of(exc)
    if error is None:
        return TransportError(f"{action}: {exc}")
    return translate_error(error, action)


@contextlib.contextmanager
def translating(action: str) -> Iterator[None]:
    """Raise a ``KafkaException`` of the block as the transport's exception, naming ``action``."""
    try:
        yield
    except KafkaException as exc:
        raise translate(exc, action) from exc
