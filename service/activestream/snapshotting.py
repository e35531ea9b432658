"""The group's snapshots for the loop: publish one every ``snapshot_every`` records of the training log,
find the newest when a replica starts with no checkpoint of its own.

The format (chunks, then a manifest sent only once they are flushed) is :mod:`activestream.snapshots`.
One replica writes at a time: the one holding partition 0 of the events topic when the log passes a
multiple of ``snapshot_every`` (a rebalance at that moment skips one snapshot; the next one comes). A
snapshot is the state every replica holds alike at that position of the log (``Engine.group_state``), so
whichever replica wrote it, the replica that restores it and reads the log from there holds the same
model as the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from activestream.checkpoint import CheckpointError, CheckpointState, decode_state, encode_state
from activestream.config import Settings
from activestream.engine import Engine
from activestream.engine.step import Record
from activestream.partitions import Partitions
from activestream.snapshots import SnapshotFinder, snapshot_records
from activestream.transport.base import Reader, TopicPartition

__all__ = ["Snapshotting"]

log = logging.getLogger(__name__)

#: Reading the snapshot topic gives up after this long without a record (a broker that stopped
#: answering): the newest whole snapshot read until then is used, else the log is read from its start.
_PATIENCE_S: Final = 30.0
#: Chunks are up to 512 KB: a few per poll keep a poll's memory small.
_CHUNKS_PER_POLL: Final = 8


class Snapshotting:
    """Publishes and finds the group's snapshots (see the module docstring).

    ``send`` produces records, ``flush`` waits until they are acknowledged (it raises if they cannot be:
    the loop's own, so an outage is waited through as for any batch).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        reader: Reader | None,
        partitions: Partitions,
        send: Callable[[Iterable[Record]], None],
        flush: Callable[[], None],
    ):
        self._settings, self._engine, self._reader = settings, engine, reader
        self._partitions, self._send, self._flush = partitions, send, flush
        self._topic = settings.snapshot_topic
        self._writes_for = TopicPartition(settings.events_topic, 0)
        self._next: int | None = None  # the log offset at which the next snapshot is due

    def load(self) -> CheckpointState | None:
        """The state of the newest whole snapshot on the topic (``None``: off, none, or unreadable)."""
        if not self._topic or self._reader is None:
            return None
        started = time.monotonic()
        finder = self._read(TopicPartition(self._topic, 0))
        best = finder.best
        if best is None:
            log.info("no snapshot of the group's model: reading the training log from its start")
            return None
        try:
            state = decode_state(best.data)
        except CheckpointError as error:  # written by another version: the log still has everything
            log.warning("snapshot unreadable: reading the log from its start", extra={"error": repr(error)})
            return None
        log.info(
            "snapshot of the group's model found",
            extra={
                "training_offset": best.training_offset,
                "bytes": len(best.data),
                "by": best.replica,
                "broken": finder.broken,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return state

    def _read(self, tp: TopicPartition) -> SnapshotFinder:
        """Read ``tp`` up to where it ends now (a snapshot written later is not waited for)."""
        assert self._reader is not None
        finder, reader = SnapshotFinder(), self._reader
        end, position = reader.end_offset(tp), 0
        if end == 0:
            return finder
        reader.assign(tp, 0)
        last_progress = time.monotonic()
        while position < end:
            messages = reader.poll(self._settings.poll_timeout_seconds, _CHUNKS_PER_POLL)
            for message in messages:
                finder.add(message)
                position = message.offset + 1
            if messages:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > _PATIENCE_S:
                log.warning("snapshot topic not read to its end", extra={"position": position, "end": end})
                break
        return finder

    def publish_if_due(self, now_ms: int, caught_up: bool) -> None:
        """After a batch (its records flushed): publish a snapshot if the log passed a multiple of
        ``snapshot_every`` since the last one and this replica writes now: it holds partition 0 of the
        events topic and has read the log to its end (``caught_up``; a replica catching up would write
        snapshots older than the newest, over its slot)."""
        if not self._topic:
            return
        every, offset = self._settings.snapshot_every, self._engine.state.training_offset
        if self._next is None:  # (from here on: what this replica learns from now)
            self._next = (offset // every + 1) * every
        if offset < self._next:
            return
        self._next = (offset // every + 1) * every
        if caught_up and self._writes_for in self._partitions.assigned:
            self._publish(now_ms, offset // every % 2)

    def _publish(self, now_ms: int, slot: int) -> None:
        started = time.monotonic()
        state = self._engine.group_state(now_ms)
        data = encode_state(state)
        offset, topic = self._engine.state.training_offset, self._topic
        records = snapshot_records(
            data,
            topic=topic,
            training_offset=offset,
            replica=self._engine.trainer.replica,
            slot=slot,
            created_at_ms=now_ms,
        )
        self._send(records[:-1])
        self._flush()  # the chunks are on the topic before the manifest that says they are whole
        self._send(records[-1:])
        self._flush()
        log.info(
            "snapshot of the group's model published",
            extra={
                "training_offset": offset,
                "bytes": len(data),
                "chunks": len(records) - 1,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
