"""Which Kafka client the adapters are built on: ``ACTIVESTREAM_TRANSPORT`` (``Settings.transport``).

- ``kafka-python`` (the default): ``transport.kafka``; pure Python, always installed.
- ``confluent``: ``transport.confluent`` on librdkafka, several times the consume rate; needs the
  ``fast`` extra (``pip install 'activestream[fast]'``).

Both follow ``transport.base`` with the same semantics; everything that builds adapters from settings
goes through here, so one setting switches the service, the demo and the CLI tools together.

>>> module_for("kafka-python").__name__
'activestream.transport.kafka'
>>> module_for("zeromq")
Traceback (most recent call last):
...
activestream.config.ConfigError: ACTIVESTREAM_TRANSPORT: unknown transport 'zeromq'; choose ...
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any, Final

from activestream.config import ConfigError, env_var
from activestream.transport.base import Admin, Consumer, Producer, Reader

__all__ = [
    "TRANSPORTS",
    "admin_from_settings",
    "consumer_from_settings",
    "module_for",
    "producer_from_settings",
    "reader_from_settings",
]

#: Setting value -> (module, adapter class name prefix, the package it needs).
TRANSPORTS: Final = {
    "kafka-python": ("activestream.transport.kafka", "Kafka", "kafka"),
    "confluent": ("activestream.transport.confluent", "Confluent", "confluent_kafka"),
}


def module_for(transport: str) -> ModuleType:
    """The adapter module of ``transport``; ``ConfigError`` naming the extra when its client is missing."""
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"{env_var('transport')}: unknown transport {transport!r}; choose {' or '.join(TRANSPORTS)}"
        )
    module, _, package = TRANSPORTS[transport]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"{env_var('transport')}={transport} needs the {package.replace('_', '-')} package, which is "
            "not installed: pip install 'activestream[fast]'"
        )
    return importlib.import_module(module)


def _adapter(settings: Any, role: str) -> Any:
    transport = getattr(settings, "transport", "kafka-python")
    prefix = TRANSPORTS.get(transport, ("", "", ""))[1]
    return getattr(module_for(transport), f"{prefix}{role}Adapter")


def consumer_from_settings(settings: Any, **overrides: Any) -> Consumer:
    """The configured transport's consumer (``overrides``: its constructor's keywords)."""
    return _adapter(settings, "Consumer").from_settings(settings, **overrides)


def reader_from_settings(settings: Any, **overrides: Any) -> Reader:
    """The configured transport's reader: one partition from an offset, in no consumer group (``overrides``:
    its constructor's keywords)."""
    return _adapter(settings, "Reader").from_settings(settings, **overrides)


def producer_from_settings(settings: Any, **overrides: Any) -> Producer:
    """The configured transport's producer (``overrides``: its constructor's keywords)."""
    return _adapter(settings, "Producer").from_settings(settings, **overrides)


def admin_from_settings(settings: Any, **overrides: Any) -> Admin:
    """The configured transport's admin client (``overrides``: its constructor's keywords)."""
    return _adapter(settings, "Admin").from_settings(settings, **overrides)
