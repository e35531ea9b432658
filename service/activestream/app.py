"""Wiring for ``activestream run``: the Kafka transport (``ACTIVESTREAM_TRANSPORT``), the HTTP server,
signals and JSON logs.

Everything here is glue; the behaviour lives in ``service`` (the loop) and the pure core.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Final

from activestream.config import Settings, load_settings
from activestream.http import HttpServer
from activestream.service import Service

__all__ = ["JsonFormatter", "build_service", "configure_logging", "run"]

log = logging.getLogger(__name__)

# Attributes every LogRecord has; anything else came in through ``extra=`` and is logged as a field.
_STANDARD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``extra`` fields, the exception.

    >>> record = logging.makeLogRecord({"msg": "checkpoint saved", "levelname": "INFO", "bytes": 42})
    >>> json.loads(JsonFormatter().format(record))["bytes"]
    42
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


#: kafka-python loggers that print whole requests at DEBUG, SASL authentication (with its password) included.
_REQUEST_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection", "kafka.conn", "kafka.protocol")


def configure_logging(level: str = "INFO") -> None:
    """Send JSON logs to stderr at ``level`` (replaces the root logger's handlers).

    kafka-python's request loggers stay at INFO or above whatever ``level`` says: at DEBUG they print
    every request sent, and a SASL PLAIN authenticate request carries the password in clear text.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, root.level))


def build_service(settings: Settings) -> Service:
    """A ``Service`` on the transport ``settings.transport`` names (``transport.factory``; imported here:
    tests of the loop never load a Kafka client)."""
    from activestream.transport.factory import (
        admin_from_settings,
        consumer_from_settings,
        producer_from_settings,
    )

    admin = admin_from_settings(settings)  # first: a missing client package fails before any connection
    consumer = consumer_from_settings(settings)
    try:
        producer = producer_from_settings(settings)
    except BaseException:
        consumer.close()
        raise
    return Service(settings, consumer, producer, admin)


def _install_signal_handlers(service: Service) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        service.request_stop()
        # A second signal is not polite any more: let it interrupt at once.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run(settings: Settings | None = None) -> None:
    """Run the service until SIGTERM/SIGINT (``activestream run``); errors propagate to the CLI."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    service = build_service(settings)
    server = HttpServer(
        service.metrics,
        service.health,
        settings.metrics_host,
        settings.metrics_port,
        settings.liveness_timeout_seconds,
    ).start()
    _install_signal_handlers(service)
    try:
        service.run()
    finally:
        server.stop()
