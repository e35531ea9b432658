"""What every Kafka adapter takes from the service's settings, whichever client library it wraps.

Both Kafka transports (``transport.kafka``, ``transport.confluent``) build their clients from explicit
keyword arguments; :class:`FromSettings` gives each adapter a ``from_settings(settings, **overrides)``
that reads them from ``Settings`` (duck-typed: ``bootstrap_servers``, the fields the adapter names,
``kafka_security_kwargs()``, optional ``client_id``), and :func:`checked_topics` and
:func:`rebalance_callbacks` are the contract's argument checks for ``Consumer.subscribe``.

>>> bootstrap_list(" a:9092, b:9092 ,")
['a:9092', 'b:9092']
>>> class Settings:
...     bootstrap_servers = "a:9092"
...     group_id = "g"
...     replication_factor = None
>>> settings_kwargs(Settings(), ("group_id",), ("replication_factor",))
{'bootstrap_servers': 'a:9092', 'group_id': 'g', 'security': {}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final, Self

from activestream.transport.base import RebalanceCallback

__all__ = [
    "ADMIN_OPTIONAL_SETTINGS",
    "CONSUMER_OPTIONAL_SETTINGS",
    "CONSUMER_SETTINGS",
    "DEFAULT_CLIENT_ID",
    "PRODUCER_SETTINGS",
    "FromSettings",
    "bootstrap_list",
    "checked_topics",
    "rebalance_callbacks",
    "settings_kwargs",
]

DEFAULT_CLIENT_ID: Final = "activestream"

#: The settings each kind of adapter reads (``FromSettings``), whichever client it wraps.
CONSUMER_SETTINGS: Final = (
    "group_id",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_records",
    "fetch_max_wait_ms",
)
#: Static group membership (KIP-345): passed when set, and only to a consumer of the settings' own group.
CONSUMER_OPTIONAL_SETTINGS: Final = ("group_instance_id",)
PRODUCER_SETTINGS: Final = ("max_message_bytes",)
ADMIN_OPTIONAL_SETTINGS: Final = ("replication_factor",)


def bootstrap_list(bootstrap_servers: str | Sequence[str]) -> list[str]:
    """``"a:9092, b:9092"`` or ``["a:9092", "b:9092"]`` -> ``["a:9092", "b:9092"]``; empty is an error."""
    items = bootstrap_servers.split(",") if isinstance(bootstrap_servers, str) else bootstrap_servers
    servers = [s.strip() for s in items if s.strip()]
    if not servers:
        raise ValueError("bootstrap_servers is empty")
    return servers


def settings_kwargs(
    settings: Any, fields: Sequence[str] = (), optional: Sequence[str] = ()
) -> dict[str, Any]:
    """Constructor keywords from ``settings``: the bootstrap servers, ``fields``, those of ``optional`` that
    are set (not ``None``), the client id when set, and the security keywords."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers}
    for name in fields:
        kwargs[name] = getattr(settings, name)
    for name in optional:
        if getattr(settings, name, None) is not None:
            kwargs[name] = getattr(settings, name)
    client_id = getattr(settings, "client_id", None)
    if client_id:
        kwargs["client_id"] = client_id
    security = getattr(settings, "kafka_security_kwargs", None)
    kwargs["security"] = dict(security()) if callable(security) else {}
    return kwargs


class FromSettings:
    """``from_settings(settings, **overrides)`` for an adapter whose constructor takes keyword arguments.

    An adapter names the settings it reads in ``SETTINGS`` (always passed) and ``OPTIONAL_SETTINGS``
    (passed when not ``None``, so the constructor's default applies otherwise); ``overrides`` win.

    A ``group_instance_id`` names this process's member of the settings' own consumer group: a consumer
    built for another group (``group_id`` overridden: the annotator, the labeling page, the demo) does not
    inherit it, unless the overrides give one.

    >>> class Adapter(FromSettings):
    ...     SETTINGS, OPTIONAL_SETTINGS = ("group_id",), CONSUMER_OPTIONAL_SETTINGS
    ...     def __init__(self, **kwargs):
    ...         self.kwargs = kwargs
    >>> class Settings:
    ...     bootstrap_servers, group_id, group_instance_id = "a:9092", "g", "pod-0"
    >>> Adapter.from_settings(Settings()).kwargs["group_instance_id"]
    'pod-0'
    >>> "group_instance_id" in Adapter.from_settings(Settings(), group_id="g-annotator").kwargs
    False
    """

    SETTINGS: ClassVar[tuple[str, ...]] = ()
    OPTIONAL_SETTINGS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> Self:
        kwargs = settings_kwargs(settings, cls.SETTINGS, cls.OPTIONAL_SETTINGS)
        if overrides.get("group_id", kwargs.get("group_id")) != kwargs.get("group_id"):
            kwargs.pop("group_instance_id", None)
        kwargs.update(overrides)
        return cls(**kwargs)


def checked_topics(topics: Sequence[str]) -> list[str]:
    """The topics to subscribe to, as a list; a bare string is refused (it would subscribe each letter).

    >>> checked_topics(("events", "labels"))
    ['events', 'labels']
    >>> checked_topics("events")
    Traceback (most recent call last):
    ...
    TypeError: topics must be a sequence of topic names, not a string
    """
    if isinstance(topics, str):
        raise TypeError("topics must be a sequence of topic names, not a string")
    return list(topics)


def rebalance_callbacks(
    on_assign: RebalanceCallback | None,
    on_revoke: RebalanceCallback | None,
    on_lost: RebalanceCallback | None,
) -> dict[str, RebalanceCallback | None]:
    """The callbacks by event; a lost partition is revoked when ``on_lost`` is not given (the contract)."""
    return {"assign": on_assign, "revoke": on_revoke, "lost": on_lost or on_revoke}
