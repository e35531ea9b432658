"""What the engine hands the loop after each batch: records to produce and the step to journal.

A :class:`Step` is everything one batch decided and learned. The loop appends it to the journal
(durably) *before* producing its records, so that after a crash a replay re-emits the same decisions
instead of deciding again (``Engine.recover``), and marks it published once its records are flushed, so
that a restart republishes only what may never have left the process.

>>> outbox = Outbox()
>>> outbox.emit(Record("label-requests", b"{}", b"e-1"))
>>> outbox.discards.append("e-2")
>>> step = outbox.take()
>>> step.discards, len(step.records), len(outbox.take().records)
(('e-2',), 1, 0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from activestream.join import PendingEntry

__all__ = ["Incoming", "Outbox", "Record", "Step"]

Headers = tuple[tuple[str, bytes], ...]


class Incoming(Protocol):
    """What the engine reads of a consumed message (the transport's ``Message`` is one): its value and
    headers. The engine hands the same object back where it holds or releases a message."""

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Record(NamedTuple):
    """A record for the producer: topic, value, key and headers."""

    topic: str
    value: bytes
    key: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One batch's decisions and learnings, journaled before its records are published.

    ``asks`` are the pending entries of the events asked, ``discards`` the ids of the events discarded,
    ``learned`` the request ids whose labels were learned, ``dead_letters`` the source positions
    (topic, partition, offset) dead-lettered, ``records`` what the batch produced, in order.
    ``positions`` are the loop's (topic, partition, next offset) after the step, so that a restart
    knows how far the replay of journaled decisions goes. ``published`` is set by the journal once the
    records were flushed.
    """

    asks: tuple[PendingEntry, ...] = ()
    discards: tuple[str, ...] = ()
    learned: tuple[str, ...] = ()
    dead_letters: tuple[tuple[str, int, int], ...] = ()
    records: tuple[Record, ...] = ()
    published: bool = False
    positions: tuple[tuple[str, int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.asks or self.discards or self.learned or self.dead_letters or self.records)

    def with_published(self) -> Step:
        return dataclasses.replace(self, published=True)


@dataclass(slots=True)
class Outbox:
    """The step being built by the batch in flight (the engine fills it, the loop takes it)."""

    asks: list[PendingEntry] = field(default_factory=list)
    discards: list[str] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)
    dead_letters: list[tuple[str, int, int]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def emit(self, record: Record) -> None:
        self.records.append(record)

    def take(self) -> Step:
        """The step so far; the outbox starts empty again."""
        step = Step(
            tuple(self.asks),
            tuple(self.discards),
            tuple(self.learned),
            tuple(self.dead_letters),
            tuple(self.records),
        )
        for part in (self.asks, self.discards, self.learned, self.dead_letters, self.records):
            part.clear()
        return step
