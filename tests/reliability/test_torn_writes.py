"""Torn writes: a crash in the middle of writing the checkpoint or the journal leaves the previous
state usable; a damaged checkpoint stops the service with a clear error instead of a silent reset.

The process-level test makes the checkpoint large (most events asked, 150 features each, nobody
answers: thousands of pending requests, several MB) so that writing it takes long enough to SIGKILL
the service while the temporary file is being written.
"""

from __future__ import annotations

import os
import time

import pytest
from reliability_tools import (
    EventStreamer,
    ServiceProcess,
    committed,
    ensure_topics,
    read_all,
    service_options,
    service_topics,
    wait_for,
)

from activestream.checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from activestream.engine import Record, Step
from activestream.join import PendingEntry, PendingStore
from activestream.journal import Journal
from activestream.messages import LabelRequest
from activestream.transport.base import TopicPartition


def temp_of(path):
    """The temp file a checkpoint write in progress uses (its name is unique to the write)."""
    journal = f".{path.name}.journal."
    temps = [t for t in path.parent.glob(f".{path.name}.*.tmp") if not t.name.startswith(journal)]
    return temps[0] if temps else None


@pytest.mark.broker
def test_sigkill_while_the_checkpoint_is_written_leaves_the_previous_one(broker, unique_name, tmp_path):
    bootstrap = broker.bootstrap_servers
    checkpoint = tmp_path / "state.ckpt"
    options = service_options(
        bootstrap,
        unique_name,
        checkpoint,
        budget=1.0,  # most events asked, nobody answers: a large pending store
        pending_max=200_000,
        max_poll_records=2000,
    )
    ensure_topics(bootstrap, service_topics(options))

    def wide(i: int, seed: int) -> dict[str, float]:  # 150 features per event: a large pending store
        return {f"f{j:03d}": (i * 31 + j) % 97 / 7 for j in range(150)}

    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=1e9, limit=5000, features=wide)
    streamer.start()
    events = streamer.stop(drain=True)

    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        service.wait_assigned()
        wait_for(lambda: load_checkpoint(checkpoint) is not None, 30, "a first checkpoint")
        # Wait for a write in progress (a checkpoint of several MB), then kill.
        deadline = time.monotonic() + 60
        while (temp := temp_of(checkpoint)) is None:
            assert time.monotonic() < deadline, "never saw a checkpoint being written"
            time.sleep(0.0005)
        service.kill()
    finally:
        service.ensure_stopped()
    assert temp.exists(), "the kill came after the rename"
    torn = temp.stat().st_size
    previous = load_checkpoint(checkpoint)  # the previous checkpoint is whole
    assert previous is not None and torn != checkpoint.stat().st_size

    # A garbled leftover temp file and a torn journal tail are harmless too.
    temp.write_bytes(os.urandom(4096))
    with Journal.path_for(checkpoint).open("ab") as journal:
        journal.write(b"\x00\x00\x00\x00\x00\x10torn")

    # A fresh group: no waiting for the killed member's session to expire (the checkpoint has the offsets).
    options["group_id"] += "-after"
    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        service.wait_assigned()
        events_tp = TopicPartition(options["events_topic"], 0)
        wait_for(
            lambda: (
                service.check_alive() or committed(bootstrap, options["group_id"]).get(events_tp) == events
            ),
            60,
            "every event was decided after the restart",
            0.5,
        )
        assert service.terminate() == 0, service.tail()
    finally:
        service.ensure_stopped()
    assert not temp.exists(), "the restart, holding the lock, removes what the killed write left"
    state = load_checkpoint(checkpoint)
    assert state.offsets[events_tp] == events
    asked = {
        LabelRequest.model_validate_json(r.value).event_id
        for r in read_all(bootstrap, options["requests_topic"])
    }
    # Every ask published is pending in the final state (no TTL, no eviction, no answer), and only those.
    assert len(asked) > events / 2
    assert {state.pending.find(event_id=e).event_id for e in asked} == asked
    assert len(state.pending) == len(asked)
    assert read_all(bootstrap, options["dead_letter_topic"]) == []
    assert not temp.exists()  # the next save replaced it


@pytest.mark.broker
def test_a_damaged_checkpoint_stops_the_service_with_a_clear_error(broker, unique_name, tmp_path):
    checkpoint = tmp_path / "state.ckpt"
    state = CheckpointState(learner=None, pending=PendingStore(10, 1000), offsets={})
    save_checkpoint(checkpoint, state)
    checkpoint.write_bytes(checkpoint.read_bytes()[:-5])  # truncated: not a crash (renames are atomic)
    options = service_options(broker.bootstrap_servers, unique_name, checkpoint)
    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        assert service.wait(30) == 1
    finally:
        service.ensure_stopped()
    errors = [e for e in service.logs() if e.get("message") == "checkpoint not loaded"]
    assert errors and "truncated or torn" in errors[0]["problem"]
    assert "move it away to start from scratch" in service.tail()
    assert checkpoint.exists()  # never replaced by a fresh, empty state


# -- the journal, in process --------------------------------------------------------------------------


def asks(*ids: int) -> Step:
    entries = tuple(
        PendingEntry(f"r{i}", f"e{i}", {"x": float(i)}, i, i + 60_000, "informative") for i in ids
    )
    return Step(asks=entries, records=tuple(Record("requests", b'{"i": %d}' % i, b"e%d" % i) for i in ids))


@pytest.mark.parametrize("cut", [1, 5, 20, 40, 47])
def test_a_torn_journal_frame_is_ignored_and_the_frames_before_it_kept(tmp_path, cut):
    journal = Journal(tmp_path / "state.ckpt.journal")
    assert journal.recover(generation=3) == []
    journal.append(asks(1, 2))
    whole = journal.path.stat().st_size
    journal.append(asks(3))
    journal.close()
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[: whole + cut])  # the crash came while the second frame was written
    recovered = Journal(journal.path).recover(generation=3)
    assert [a.event_id for step in recovered for a in step.asks] == ["e1", "e2"]
    assert Journal(journal.path).recover(generation=3) == recovered  # the torn tail is gone for good


def test_a_journal_of_another_checkpoint_is_ignored(tmp_path):
    journal = Journal(tmp_path / "state.ckpt.journal")
    journal.recover(generation=3)
    journal.append(asks(1))
    journal.close()
    # The checkpoint of generation 4 was saved, then the process died before the journal was reset.
    assert Journal(journal.path).recover(generation=4) == []
    assert Journal(journal.path).recover(generation=3) == []  # and it was reset


def test_garbage_instead_of_a_journal_is_ignored(tmp_path):
    path = tmp_path / "state.ckpt.journal"
    path.write_bytes(os.urandom(1000))
    assert Journal(path).recover(generation=0) == []
