"""One writer per checkpoint: an exclusive lock beside it, held while the service runs.

Two processes given the same ``ACTIVESTREAM_CHECKPOINT_PATH`` (a shared volume, a copied manifest, a
second replica started by hand) would each replace the other's checkpoint and journal: after a restart
every one of them holds the last writer's model, pending requests and offsets, and nothing says so. The
second process is refused instead, on one line that names the holder and the fix.

The lock is ``flock`` on ``<checkpoint>.lock``: the kernel (or the NFS server) drops it when its holder
exits, however it exits, so a process restarted after a SIGKILL takes it at once. The file keeps the
holder's host and process id for the message; it is never deleted (deleting a lock file another process
is about to lock would let two processes hold "the" lock on two files).

Within one process the lock is shared: it keeps *processes* apart. An embedded service restarted in the
same process (tests do this, without always closing the first) takes it again.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "state.ckpt"
>>> lock = CheckpointLock.acquire(path)
>>> again = CheckpointLock.acquire(path)  # the same process: shared
>>> lock.release(); again.release()
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from pathlib import Path
from typing import ClassVar

from activestream.config import ConfigError

__all__ = ["CheckpointInUse", "CheckpointLock"]


class CheckpointInUse(ConfigError):
    """Another process holds the checkpoint's lock."""


class CheckpointLock:
    """An exclusive lock on a checkpoint path for this process (see the module docstring)."""

    #: Locks this process holds: path -> (file descriptor, holders).
    _held: ClassVar[dict[Path, tuple[int, int]]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._released = False

    @staticmethod
    def path_for(checkpoint_path: str | Path) -> Path:
        checkpoint_path = Path(checkpoint_path)
        return checkpoint_path.with_name(f"{checkpoint_path.name}.lock")

    @classmethod
    def acquire(cls, checkpoint_path: str | Path) -> CheckpointLock:
        """Lock ``checkpoint_path`` for this process; raise ``CheckpointInUse`` if another holds it."""
        path = cls.path_for(checkpoint_path).resolve()
        with cls._guard:
            if path in cls._held:
                fd, holders = cls._held[path]
                cls._held[path] = (fd, holders + 1)
                return cls(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                checkpoint = Path(checkpoint_path)
                raise CheckpointInUse(
                    f"checkpoint {checkpoint} is in use by another activestream process ({holder}); "
                    "give each replica its own ACTIVESTREAM_CHECKPOINT_PATH"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
            cls._held[path] = (fd, 1)
        return cls(path)

    @classmethod
    def held_here(cls, checkpoint_path: str | Path) -> bool:
        """Whether this process holds the lock on ``checkpoint_path``."""
        with cls._guard:
            return cls.path_for(checkpoint_path).resolve() in cls._held

    def release(self) -> None:
        """Give the lock up (once); the last holder in this process unlocks the file."""
        if self._released:
            return
        self._released = True
        with self._guard:
            fd, holders = self._held[self.path]
            if holders > 1:
                self._held[self.path] = (fd, holders - 1)
                return
            del self._held[self.path]
            os.close(fd)  # closing the last descriptor releases the flock


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    return text or "holder unknown"
