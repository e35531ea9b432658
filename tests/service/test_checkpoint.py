"""Checkpoints: round trip, atomic replacement, and every way a file can be bad."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest

from activestream import checkpoint
from activestream.checkpoint import (
    FORMAT_VERSION,
    MAGIC,
    CheckpointError,
    CheckpointState,
    load_checkpoint,
    save_checkpoint,
)
from activestream.join import JoinStatus, PendingStore
from activestream.learner import make_learner
from activestream.transport.base import TopicPartition

HEADER = struct.Struct(">8sHQ32s")


def a_state(offset: int = 10) -> CheckpointState:
    learner = make_learner("gnb", budget=0.5, seed=1)
    learner.learn_one({"x": 1.0}, True)
    learner.learn_one({"x": -1.0}, False)
    pending = PendingStore(10, 1000)
    pending.add("r1", "e1", {"x": 0.5}, 0, "random")
    return CheckpointState(
        learner=learner,
        pending=pending,
        offsets={TopicPartition("events", 0): offset, TopicPartition("labels", 0): 3},
        model_version=2,
        counters={"prequential_correct": 1, "prequential_judged": 2},
        created_at_ms=123,
    )


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "state.ckpt"  # the directory is created
    size = save_checkpoint(path, a_state())
    assert path.stat().st_size == size
    state = load_checkpoint(path)
    assert state.offsets == {TopicPartition("events", 0): 10, TopicPartition("labels", 0): 3}
    assert (state.model_version, state.counters, state.created_at_ms) == (2, a_state().counters, 123)
    assert state.pending.join(1, request_id="r1").status is JoinStatus.LEARNED
    assert state.learner.decide({"x": 1.0}).y_pred is True


def test_no_file_means_no_checkpoint(tmp_path):
    assert load_checkpoint(tmp_path / "none.ckpt") is None


def test_a_save_replaces_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, a_state(10))
    save_checkpoint(path, a_state(20))
    assert load_checkpoint(path).offsets[TopicPartition("events", 0)] == 20
    assert os.listdir(tmp_path) == ["state.ckpt"]


def test_a_leftover_torn_temp_file_is_harmless(tmp_path):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, a_state(10))
    (tmp_path / ".state.ckpt.tmp").write_bytes(MAGIC + b"\x00torn")  # a crash mid-write
    assert load_checkpoint(path).offsets[TopicPartition("events", 0)] == 10
    save_checkpoint(path, a_state(30))  # and the next save overwrites it
    assert load_checkpoint(path).offsets[TopicPartition("events", 0)] == 30


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, failing):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, a_state(10))

    def crash(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(checkpoint.os, failing, crash)
    with pytest.raises(CheckpointError, match="disk on fire"):
        save_checkpoint(path, a_state(20))
    monkeypatch.undo()
    assert load_checkpoint(path).offsets[TopicPartition("events", 0)] == 10
    assert os.listdir(tmp_path) == ["state.ckpt"]


def test_an_unpicklable_state_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "state.ckpt"
    state = CheckpointState(learner=lambda: None, pending=PendingStore(1, 1), offsets={})
    with pytest.raises(CheckpointError):
        save_checkpoint(path, state)
    assert not path.exists()


def rewrite(path, *, magic=MAGIC, version=FORMAT_VERSION, length=None, digest=None, payload=None):
    data = path.read_bytes()
    payload = data[HEADER.size :] if payload is None else payload
    length = len(payload) if length is None else length
    digest = hashlib.sha256(payload).digest() if digest is None else digest
    path.write_bytes(HEADER.pack(magic, version, length, digest) + payload)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.write_bytes(b""), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:20]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:-1]), "truncated or torn"),
        (lambda p: p.write_bytes(p.read_bytes() + b"x"), "truncated or torn"),
        (lambda p: rewrite(p, magic=b"NOTACKPT"), "bad magic"),
        (lambda p: rewrite(p, version=FORMAT_VERSION + 1), "format version"),
        (lambda p: rewrite(p, digest=b"\0" * 32), "checksum"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5] + b"xxxxx"), "checksum"),
        (lambda p: rewrite(p, payload=b"not a pickle"), "unreadable by this code version"),
        (lambda p: rewrite(p, payload=__import__("pickle").dumps({"a": 1})), "not a CheckpointState"),
    ],
)
def test_bad_files_raise_a_clear_error(tmp_path, caplog, damage, problem):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, a_state())
    damage(path)
    with pytest.raises(CheckpointError, match=problem) as raised:
        load_checkpoint(path)
    assert "move it away" in str(raised.value)
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_an_unreadable_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path)  # a directory
