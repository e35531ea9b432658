"""Snapshots of the group's model on a topic: how one is cut into records, and found again.

With a training log every replica holds the same model (:mod:`activestream.engine.training_log`), so a
new replica could learn it by reading the whole log, but that takes time in proportion to the log. A
snapshot is the group's state at a position of the log (``Engine.group_state``, in the checkpoint format
of :mod:`activestream.checkpoint`): a new replica restores the newest and reads the log from there.

A snapshot is written as **chunks** (at most ``chunk_bytes`` each: Kafka refuses records over 1 MB by
default, and the memory of the log's request ids alone can exceed that) and then a **manifest** naming
the chunks' count, size and SHA-256. The writer flushes the chunks before it sends the manifest, so a
reader that finds a manifest and every chunk it names has the whole snapshot; a writer that died in
between left chunks without a manifest, which readers ignore. Keys alternate between two slots
(``0:…``, ``1:…``, by the snapshot's number): on a compacted topic the previous snapshot stays whole
while the next one is written over the older slot.

>>> records = snapshot_records(b"abcde", topic="snaps", training_offset=42, replica="r0", slot=1,
...                            created_at_ms=7, chunk_bytes=2)
>>> [record.key for record in records]
[b'1:0', b'1:1', b'1:2', b'1:manifest']
>>> finder = SnapshotFinder()
>>> for offset, record in enumerate(records):
...     finder.add(Message(record.topic, 0, offset, record.value, record.key, record.headers))
>>> finder.best.training_offset, finder.best.data, finder.best.replica
(42, b'abcde', 'r0')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Final

from activestream.engine.step import Record
from activestream.transport.base import Message

__all__ = ["CHUNK_BYTES", "Snapshot", "SnapshotFinder", "snapshot_records"]

#: The largest chunk: under Kafka's default 1 MB record limit (``message.max.bytes``, the producers'
#: request sizes), with room for the key, the headers and the record batch's overhead.
CHUNK_BYTES: Final = 512 * 1024

_SNAPSHOT: Final = "activestream.snapshot"
_CHUNK: Final = "activestream.chunk"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A whole snapshot: the state's bytes (``checkpoint.decode_state`` reads them) and where it stands."""

    training_offset: int
    data: bytes = field(repr=False)
    replica: str = ""
    created_at_ms: int = 0


def snapshot_records(
    data: bytes,
    *,
    topic: str,
    training_offset: int,
    replica: str,
    slot: int,
    created_at_ms: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> list[Record]:
    """The records of a snapshot of ``data`` (the state at ``training_offset``): its chunks, then its
    manifest (last: send it only once the chunks are flushed; see the module docstring)."""
    snapshot_id = f"{training_offset}@{replica}".encode()
    chunks = [data[start : start + chunk_bytes] for start in range(0, len(data), chunk_bytes)] or [b""]
    records = [
        Record(topic, chunk, b"%d:%d" % (slot, index), ((_SNAPSHOT, snapshot_id), (_CHUNK, b"%d" % index)))
        for index, chunk in enumerate(chunks)
    ]
    manifest = {
        "training_offset": training_offset,
        "chunks": len(chunks),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "replica": replica,
        "created_at_ms": created_at_ms,
    }
    value = json.dumps(manifest, sort_keys=True).encode()
    records.append(Record(topic, value, b"%d:manifest" % slot, ((_SNAPSHOT, snapshot_id),)))
    return records


class SnapshotFinder:
    """Reads a snapshot topic in order and keeps the newest whole snapshot (``best``); ``broken`` counts
    the manifests whose chunks were missing or did not match (a writer that died, a compaction between
    two snapshots in one slot). Holds the chunks of the snapshots it has not seen the manifest of yet."""

    def __init__(self) -> None:
        self.best: Snapshot | None = None
        self.broken = 0
        self._chunks: dict[bytes, dict[int, bytes]] = {}

    def add(self, message: Message) -> None:
        headers = dict(message.headers)
        snapshot_id = headers.get(_SNAPSHOT)
        if snapshot_id is None or message.value is None:
            return  # not a snapshot's record (or a compaction tombstone)
        index = headers.get(_CHUNK)
        if index is not None:
            self._chunks.setdefault(snapshot_id, {})[int(index)] = message.value
            return
        snapshot = _assembled(message.value, self._chunks.pop(snapshot_id, {}))
        if snapshot is None:
            self.broken += 1
        elif self.best is None or snapshot.training_offset >= self.best.training_offset:
            self.best = snapshot


def _assembled(manifest_value: bytes, chunks: dict[int, bytes]) -> Snapshot | None:
    """The snapshot a manifest and the chunks read for it make, or ``None`` if they do not make one."""
    try:
        manifest = json.loads(manifest_value)
        count, offset = int(manifest["chunks"]), int(manifest["training_offset"])
        data = b"".join(chunks[index] for index in range(count))
        if len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            return None
        return Snapshot(offset, data, str(manifest["replica"]), int(manifest["created_at_ms"]))
    except (ValueError, KeyError, TypeError):
        return None
