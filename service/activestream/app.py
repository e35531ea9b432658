"""Wiring for ``activestream run``: the Kafka transport (``ACTIVESTREAM_TRANSPORT``), the HTTP server,
signals and JSON logs.

Everything here is glue; the behaviour lives in ``service`` (the loop) and the pure core.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Final

from activestream.config import ConfigError, Settings, env_var, load_settings
from activestream.http import HttpServer
from activestream.ownership import CheckpointLock
from activestream.service import Service, service_topics

__all__ = [
    "CLIENT_LOGGERS",
    "BrokerUnreachable",
    "JsonFormatter",
    "build_service",
    "check_broker",
    "configure_logging",
    "effective_configuration",
    "freeze_startup_heap",
    "log_configuration",
    "run",
    "tune_garbage_collector",
]

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
#: ``kafka.admin.client`` logs its whole configuration (the SASL password included) at DEBUG.
_REQUEST_LOGGERS = (
    "kafka.protocol.parser",
    "kafka.net.connection",
    "kafka.conn",
    "kafka.protocol",
    "kafka.admin.client",
)

#: The Kafka clients' own loggers (kafka-python; librdkafka's lines, as transport.confluent forwards them).
CLIENT_LOGGERS: Final = ("kafka", "confluent_kafka", "activestream.transport.confluent.librdkafka")


def configure_logging(level: str = "INFO") -> None:
    """Send JSON logs to stderr at ``level`` (replaces the root logger's handlers).

    The Kafka clients' internals stay at WARNING unless ``level`` is DEBUG: at INFO they were 65 of the
    71 lines of a start. kafka-python's request loggers stay at INFO or above whatever ``level`` says: at
    DEBUG they print every request sent, and a SASL PLAIN authenticate request carries the password in
    clear text.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    clients = root.level if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(clients)
    for name in _REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, clients))


#: Settings never logged in clear (``SecretStr`` masks the password already; the user name too).
_MASKED: Final = frozenset({"sasl_username", "sasl_password"})


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """Every setting's value as the service uses it, secrets masked: what the start-up line logs.

    >>> config = effective_configuration(Settings(sasl_username="alice", sasl_password="hunter2"))
    >>> config["sasl_username"], config["sasl_password"], config["budget"]
    ('***', '***', 0.1)
    """
    values = settings.model_dump(mode="json")
    return {k: ("***" if k in _MASKED and v is not None else v) for k, v in values.items()}


def log_configuration(settings: Settings) -> None:
    """One INFO line with the effective configuration: broker, topics, model, budget... (secrets masked)."""
    log.info(
        "configuration: %s, topics %s -> %s, labels %s, model %s, %s/%s, budget %s",
        settings.bootstrap_servers,
        settings.events_topic,
        settings.requests_topic,
        settings.labels_topic,
        settings.model,
        settings.measure,
        settings.policy,
        settings.budget,
        extra={"settings": effective_configuration(settings)},
    )


class BrokerUnreachable(ConfigError):
    """The broker did not answer at start: the message names the address and the variable that sets it."""


def check_broker(settings: Settings, topics: Sequence[str] = ()) -> None:
    """Pre-flight: one metadata request through the configured transport's admin client, bounded by
    ``startup_timeout_seconds``; ``BrokerUnreachable`` when it gets no answer, ``ConfigError`` naming
    those of ``topics`` that do not exist (the topics a start that creates none needs).

    Without it, kafka-python retried for ~35 s and librdkafka for longer, printing hundreds of
    connection errors and no hint of the variable to check.
    """
    from activestream.transport.factory import admin_from_settings

    timeout_s = settings.startup_timeout_seconds
    quiet = _silence_clients() if settings.log_level != "DEBUG" else {}
    try:
        admin = admin_from_settings(
            settings, request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=int(timeout_s * 1000)
        )
        try:
            reachable = admin.is_reachable(timeout_s)
            missing = admin.missing_topics(topics) if reachable and topics else []
        finally:
            admin.close()
    except BaseException:
        _restore_levels(quiet)
        raise
    if not reachable:
        # The clients stay silent: their threads may still be retrying while the command exits
        # (configure_logging sets their levels again).
        security = settings.security_protocol != "PLAINTEXT"
        hint = f" and {env_var('security_protocol')}, {env_var('sasl_mechanism')}..." if security else ""
        raise BrokerUnreachable(
            f"no Kafka broker answered at {settings.bootstrap_servers} within {timeout_s:g} s "
            f"({settings.transport}); check {env_var('bootstrap_servers')}{hint} "
            "(host:port, comma-separated) and that the broker is up"
        )
    _restore_levels(quiet)
    if missing:
        raise ConfigError(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: create them, "
            f"check the ACTIVESTREAM_*_TOPIC names, or set {env_var('create_topics')}=true"
        )


def _silence_clients() -> dict[str, int]:
    """Raise the Kafka clients' loggers above CRITICAL (each refused connection is a log line, and the one
    line that says what to fix would drown in them); returns their levels, for ``_restore_levels``."""
    names = (*CLIENT_LOGGERS, *_REQUEST_LOGGERS, "activestream.transport")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return saved


def _restore_levels(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def build_service(settings: Settings) -> Service:
    """A ``Service`` on the transport ``settings.transport`` names (``transport.factory``; imported here:
    tests of the loop never load a Kafka client)."""
    from activestream.transport.factory import (
        admin_from_settings,
        consumer_from_settings,
        producer_from_settings,
        reader_from_settings,
    )

    admin = admin_from_settings(settings)  # first: a missing client package fails before any connection
    consumer = consumer_from_settings(settings)
    reader = None
    try:
        producer = producer_from_settings(settings)
        reader = reader_from_settings(settings) if settings.training_topic else None
    except BaseException:
        consumer.close()
        raise
    return Service(settings, consumer, producer, admin, reader=reader)


def freeze_startup_heap() -> int:
    """Take what start-up left alive out of the garbage collector's full collections; return how many.

    Imported modules (river, scipy, pydantic, the Kafka client) and the restored model are ~137,000
    tracked objects that live as long as the process. Every full collection walked all of them: 70–120 ms
    stalls of the loop, one every few seconds while pending requests accumulate (``long_run.py``).
    Frozen, they are skipped (CPython's ``gc.freeze``, meant for this); reference counting still frees
    them. The price: a reference cycle among them that later becomes garbage is never collected. A river
    model holds a few at most (3 objects for a logistic regression), left once per drift replacement.

    >>> freeze_startup_heap() > 0, gc.get_freeze_count() > 0
    (True, True)
    >>> gc.unfreeze()  # a doctest's process is not a service's
    """
    gc.collect()  # garbage first: what is frozen now is never collected
    gc.freeze()
    return gc.get_freeze_count()


#: Allocations of container objects between two young-generation collections (CPython's default: 700).
#: The loop allocates several short-lived containers an event (the parsed JSON, the event, its decision,
#: records); at 700 the collector ran every few dozen events and the older generations' collections
#: followed, 11% of the loop's CPU in memory (``benchmarks/label_cost.py --young``, docs/benchmarks.md).
#: At 10,000 a young collection walks at most that many objects, and cycles wait a little longer.
YOUNG_GENERATION_THRESHOLD: Final = 10_000


def tune_garbage_collector() -> int:
    """Set the collector for a long-running loop: the start-up heap frozen (``freeze_startup_heap``), the
    young generation widened (``YOUNG_GENERATION_THRESHOLD``); return how many objects were frozen.

    >>> before = gc.get_threshold()
    >>> tune_garbage_collector() > 0, gc.get_threshold()[0]
    (True, 10000)
    >>> gc.unfreeze(); gc.set_threshold(*before)  # a doctest's process is not a service's
    """
    frozen = freeze_startup_heap()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    return frozen


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
    # First: a checkpoint another process writes, an unreachable broker or a missing topic is one line,
    # not the configuration and then it. The lock is held until the process exits.
    CheckpointLock.acquire(settings.checkpoint_path)
    check_broker(settings, () if settings.create_topics else service_topics(settings))
    log_configuration(settings)
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
        service.start()  # restore and subscribe: the long-lived heap is complete
        log.info("garbage collector tuned", extra={"frozen_objects": tune_garbage_collector()})
        service.run()
    finally:
        server.stop()
