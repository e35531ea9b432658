"""The journal: every step the engine took since the checkpoint, so that a replay decides nothing twice.

A replay after a crash goes over the events and labels since the checkpoint with a model that may learn
them in another order: deciding again could ask for an event discarded before (overspending the budget)
or discard one whose request annotators already have (losing its label). The loop appends each batch's
:class:`~activestream.engine.step.Step` here *before* producing its records, and marks it published
once they are flushed; a restart hands the steps back to the engine (``Engine.recover``), which makes
the same decisions again and republishes only steps never marked published.

The file (``<checkpoint>.journal``) is a header frame (the checkpoint's *generation*) followed by frames
of steps and published marks; each frame is its length, its SHA-256 and a pickle. A crash while
appending leaves a torn last frame, ignored (nothing of that step was produced). A journal of another
generation (the checkpoint was replaced, then the process died before the journal was) holds nothing
the checkpoint lacks: ignored.

Durability: a step with asks is fsynced before its requests go out (annotators must never hold a request
the service forgot, even after a power loss); a step of discards and learnings only is written to the
operating system, which keeps it through a crash of the process, and fsynced (``sync``) before the loop
commits offsets past it: the journal then always reaches the group's committed offsets, so a committed
offset beyond it can only be another replica's (``activestream.partitions``).

>>> import tempfile
>>> from activestream.engine.step import Record, Step
>>> journal = Journal(Path(tempfile.mkdtemp()) / "state.ckpt.journal")
>>> journal.recover(generation=7)
[]
>>> journal.append(Step(discards=("e1",), records=(Record("decisions", b"{}", b"e1"),)))
>>> journal.mark_published()
>>> journal.append(Step(discards=("e2",)))
>>> [(s.discards, s.published) for s in Journal(journal.path).recover(generation=7)]
[(('e1',), True), (('e2',), False)]
>>> Journal(journal.path).recover(generation=8)  # the checkpoint of generation 8 covers them
[]
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

from activestream.checkpoint import CheckpointError, fsync_directory, temp_path_for
from activestream.engine.step import Step

__all__ = ["Journal"]

log = logging.getLogger(__name__)

_FRAME: Final = struct.Struct(">Q32s")  # payload length, SHA-256 of the payload
#: The frame that marks every step before it as published.
_PUBLISHED: Final = "published"


class Journal:
    """The steps taken since the checkpoint of one generation; see the module docstring."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self._unpublished = False
        self._unsynced = False  # steps written but not fsynced

    @staticmethod
    def path_for(checkpoint_path: str | Path) -> Path:
        checkpoint_path = Path(checkpoint_path)
        return checkpoint_path.with_name(f"{checkpoint_path.name}.journal")

    def recover(self, generation: int) -> list[Step]:
        """The steps journaled after the checkpoint of ``generation`` (0: no checkpoint), each marked
        published or not; the journal then continues from them (a torn tail or another generation's
        journal is dropped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as error:
            raise CheckpointError(f"cannot read the journal {self.path}: {error!r}") from error
        frames = _frames(data)
        steps: list[Step] = []
        published = 0
        if next(frames, None) == generation:
            for frame in frames:
                if frame == _PUBLISHED:
                    published = len(steps)
                elif isinstance(frame, Step):
                    steps.append(frame)
        elif data:
            log.info("journal of another checkpoint ignored", extra={"path": str(self.path)})
        steps = [step.with_published() if i < published else step for i, step in enumerate(steps)]
        self.reset(generation, steps)
        return steps

    def append(self, step: Step) -> None:
        """Record ``step`` (fsynced when it asks); raises ``CheckpointError``."""
        if not step:
            return
        sync = bool(step.asks)
        self._write(_frame(step), sync=sync)
        # Published marks need no sync (lost, a step is only republished under the same ids); steps do
        # before a commit: they carry the positions that tell this process's commits from another's.
        self._unsynced = not sync  # an fsync covers every frame before it
        self._unpublished = True

    def mark_published(self) -> None:
        """Every step appended so far had its records flushed (a restart does not republish them)."""
        if self._unpublished:
            self._write(_frame(_PUBLISHED), sync=False)  # lost: only republished, with the same ids
            self._unpublished = False

    def sync(self) -> None:
        """Make every step appended so far durable (before the loop commits past them: after a power loss
        the journal must still reach the committed offsets, or the restart would take them for another
        replica's); raises ``CheckpointError``."""
        if self._unsynced and self._file is not None:
            try:
                os.fsync(self._file.fileno())
            except Exception as error:
                raise CheckpointError(f"cannot sync the journal {self.path}: {error!r}") from error
            self._unsynced = False

    def _write(self, frame: bytes, *, sync: bool) -> None:
        try:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 - kept open between batches
            self._file.write(frame)
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
        except Exception as error:
            raise CheckpointError(f"cannot append to the journal {self.path}: {error!r}") from error

    def reset(self, generation: int, carried: Sequence[Step] = ()) -> None:
        """Start the journal of the checkpoint of ``generation`` with ``carried`` steps (atomically:
        temp file, fsync, rename); raises ``CheckpointError``."""
        self.close()
        temp = temp_path_for(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as file:
                file.write(_frame(generation))
                # The published steps, their mark, then the others (steps are independent of order).
                published = [step for step in carried if step and step.published]
                for step in published:
                    file.write(_frame(step))
                if published:
                    file.write(_frame(_PUBLISHED))
                for step in carried:
                    if step and not step.published:
                        file.write(_frame(step))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
            fsync_directory(self.path.parent)
        except Exception as error:
            temp.unlink(missing_ok=True)
            raise CheckpointError(f"cannot reset the journal {self.path}: {error!r}") from error
        self._unpublished = any(not step.published for step in carried)
        self._unsynced = False

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):
                file.close()


def _frame(obj: object) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(payload), hashlib.sha256(payload).digest()) + payload


def _frames(data: bytes) -> Iterator[Any]:
    """The unpickled frames of a journal, up to the first torn or corrupt one."""
    view, position = memoryview(data), 0
    while position + _FRAME.size <= len(data):
        length, digest = _FRAME.unpack_from(data, position)
        payload = view[position + _FRAME.size : position + _FRAME.size + length]
        if len(payload) != length or hashlib.sha256(payload).digest() != digest:
            return
        try:
            yield pickle.loads(payload)
        except Exception:
            return
        position += _FRAME.size + length
