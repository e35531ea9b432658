"""The journal is durable up to every step before the loop commits past it, with one fsync per batch."""

from __future__ import annotations

import os

from activestream.engine.step import Record, Step
from activestream.join import PendingEntry
from activestream.journal import Journal


def ask(i: int) -> Step:
    entry = PendingEntry(f"r{i}", f"e{i}", {"x": float(i)}, i, i + 60_000, "informative")
    return Step(asks=(entry,), records=(Record("requests", b"{}", b"e%d" % i),))


def test_sync_fsyncs_only_steps_not_yet_durable(tmp_path, monkeypatch):
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    journal = Journal(tmp_path / "state.ckpt.journal")
    journal.recover(generation=1)
    calls.clear()  # starting the journal (its header, the directory) is synced once
    journal.append(ask(1))  # asks: fsynced at once
    journal.mark_published()  # a mark needs no fsync
    journal.sync()
    assert len(calls) == 1, "a batch with asks costs one fsync, not two"
    journal.append(Step(discards=("e2",)))  # discards only: written, not fsynced
    assert len(calls) == 1
    journal.sync()  # before the commit
    journal.sync()  # nothing new
    assert len(calls) == 2
    journal.close()
