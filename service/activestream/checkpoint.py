"""Checkpoints: the learner, the pending store and the offsets they cover, saved atomically.

Restart = restore + seek + replay: because the state and the offsets are saved together, replaying the
messages after the offsets gives the model exactly the labels it had not learned yet.

File layout: a fixed header — magic ``ASTRCKPT``, format version (uint16), payload length (uint64),
SHA-256 of the payload — then the pickled :class:`CheckpointState`. A save writes a temporary file in
the same directory, fsyncs it, renames it over the checkpoint and fsyncs the directory, so a crash at any
point leaves either the previous checkpoint or the new one, never a torn file. Checkpoints are pickles:
load only files this service wrote (the path is configuration, not input).

Beside the checkpoint, a :class:`~activestream.journal.Journal` records every decision and learning
made since it (see there).

>>> import tempfile
>>> from pathlib import Path
>>> from activestream.join import PendingStore
>>> path = Path(tempfile.mkdtemp()) / "state.ckpt"
>>> offsets = {TopicPartition("events", 0): 42}
>>> state = CheckpointState(learner=None, pending=PendingStore(10, 1000), offsets=offsets)
>>> _ = save_checkpoint(path, state)
>>> load_checkpoint(path).offsets
{TopicPartition(topic='events', partition=0): 42}
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import pickle
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

from activestream.join import PendingStore
from activestream.transport.base import TopicPartition

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "CheckpointError",
    "CheckpointState",
    "decode_state",
    "encode_state",
    "fsync_directory",
    "load_checkpoint",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

MAGIC: Final = b"ASTRCKPT"
#: Bump when ``CheckpointState`` changes incompatibly; older files are then refused, not misread.
FORMAT_VERSION: Final = 1
_HEADER: Final = struct.Struct(">8sHQ32s")


class CheckpointError(Exception):
    """A checkpoint could not be written, or the file is not a checkpoint this version can read."""


@dataclass(frozen=True, slots=True)
class CheckpointState:
    """Everything a restarted service needs to continue as if it had never stopped.

    ``offsets`` are the next offsets to read (Kafka's convention) of every partition the state covers;
    ``counters`` keep the totals that must survive a restart (e.g. the prequential accuracy's counts, and
    the sums of its inverse-probability weights, which are not whole numbers); a counter a checkpoint
    lacks (written before it existed) reads as 0.

    The pending entries keep how each request was asked (``PendingEntry.ask_proba``); an entry pickled
    before that field existed loads with ``None`` (see :class:`~activestream.join.PendingEntry`), so an
    older checkpoint or ask journal restores, its labels just carry no weight.
    """

    learner: Any
    pending: PendingStore
    offsets: dict[TopicPartition, int]
    model_version: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    created_at_ms: int = 0
    #: The label-free drift signal on all scores (``None``: off).
    drift_signal: Any = None
    #: The distinct string values per feature (``feature_bounds.CategoryBounds``; ``None`` in a
    #: checkpoint from before it existed).
    categories: Any = None
    #: With a training log: the request ids of its examples learned (``closed_requests.ClosedRequests``;
    #: ``None`` without one, or in a checkpoint from before it existed). ``offsets`` then holds the log's
    #: partition too: the offset of its next example to learn.
    applied: Any = None
    #: With a training log: the group's open requests read from it (``join.PendingStore``), and the log's
    #: clock (its newest record's time), at the log position ``offsets`` holds.
    group: Any = None
    log_clock_ms: int = 0


def save_checkpoint(path: str | Path, state: CheckpointState) -> int:
    """Atomically replace the checkpoint at ``path`` with ``state``; return the bytes written.

    Raises ``CheckpointError`` (the previous checkpoint is then left intact).
    """
    path = Path(path)
    temp = temp_path_for(path)
    try:
        data = encode_state(state)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_directory(path.parent)
    except Exception as error:
        temp.unlink(missing_ok=True)
        log.error("checkpoint not saved", extra={"path": str(path), "error": repr(error)})
        raise CheckpointError(f"cannot save checkpoint {path}: {error!r}") from error
    return len(data)


def encode_state(state: CheckpointState) -> bytes:
    """``state`` in the checkpoint format (header, then the pickle): what a file, or a snapshot of the group's
    model (:mod:`activestream.snapshots`), holds."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest()) + payload


def temp_path_for(path: Path) -> Path:
    """A temp file beside ``path``, unique to this write: two writers can never interleave in one file.

    >>> temp_path_for(Path("/data/state.ckpt")).name.startswith(".state.ckpt.")
    True
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete the temp files left beside ``path`` (and its journal) by writes a crash interrupted; call it
    only while holding the checkpoint's lock, when no write of this path can be in progress."""
    stale = sorted(path.parent.glob(f".{glob.escape(path.name)}*.tmp"))
    for temp in stale:
        temp.unlink(missing_ok=True)
    return stale


def fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; without it a power loss can bring the old directory entry back.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path) -> CheckpointState | None:
    """The checkpoint at ``path``, or ``None`` when there is none.

    Raises ``CheckpointError`` for an unreadable, truncated, corrupt or incompatible file: starting from
    scratch instead would silently throw the model away, so the caller decides.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        _fail(path, f"unreadable: {error!r}")
    try:
        return decode_state(data)
    except CheckpointError as error:
        _fail(path, str(error))


def decode_state(data: bytes) -> CheckpointState:
    """The state ``data`` holds (see ``encode_state``); ``CheckpointError`` saying what is wrong if none."""
    if len(data) < _HEADER.size:
        _wrong(f"truncated: {len(data)} bytes, shorter than the header")
    magic, version, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        _wrong("not an activestream checkpoint (bad magic)")
    if version != FORMAT_VERSION:
        _wrong(f"in format version {version}; this service reads version {FORMAT_VERSION}")
    payload = memoryview(data)[_HEADER.size :]
    if len(payload) != length:
        _wrong(f"truncated or torn: payload is {len(payload)} bytes, header says {length}")
    if hashlib.sha256(payload).digest() != digest:
        _wrong("corrupt: checksum mismatch")
    try:
        state = pickle.loads(payload)
    except Exception as error:  # a class renamed or removed since the checkpoint was written
        _wrong(f"unreadable by this code version: {error!r}")
    if not isinstance(state, CheckpointState):
        _wrong(f"a pickled {type(state).__name__}, not a CheckpointState")
    return state


def _wrong(problem: str) -> NoReturn:
    raise CheckpointError(problem)


def _fail(path: Path, problem: str) -> NoReturn:
    message = f"checkpoint {path} is {problem}; move it away to start from scratch"
    log.error("checkpoint not loaded", extra={"path": str(path), "problem": problem})
    raise CheckpointError(message)
