"""The snapshot format: chunks then a manifest; the newest whole snapshot is found, others passed over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from activestream.checkpoint import CheckpointState, decode_state, encode_state
from activestream.join import PendingStore
from activestream.snapshots import CHUNK_BYTES, SnapshotFinder, snapshot_records
from activestream.transport.base import Message, TopicPartition


def messages(records, start: int = 0) -> list[Message]:
    return [Message(r.topic, 0, start + i, r.value, r.key, r.headers) for i, r in enumerate(records)]


def find(records) -> SnapshotFinder:
    finder = SnapshotFinder()
    for message in messages(records):
        finder.add(message)
    return finder


def records(data: bytes, offset: int, slot: int = 0, chunk_bytes: int = CHUNK_BYTES, replica: str = "r"):
    return snapshot_records(
        data,
        topic="snaps",
        training_offset=offset,
        replica=replica,
        slot=slot,
        created_at_ms=1,
        chunk_bytes=chunk_bytes,
    )


@given(st.binary(max_size=3000), st.integers(1, 700))
def test_any_bytes_come_back_whole_whatever_the_chunk_size(data, chunk_bytes):
    written = records(data, 7, chunk_bytes=chunk_bytes)
    assert len(written) == max(1, -(-len(data) // chunk_bytes)) + 1
    assert all(len(record.value) <= chunk_bytes for record in written[:-1])
    best = find(written).best
    assert best is not None and best.data == data and best.training_offset == 7


def test_a_chunk_stays_under_kafkas_default_record_limit():
    written = records(bytes(3 * CHUNK_BYTES + 5), 1)
    assert len(written) == 5 and max(len(record.value) for record in written) <= 1_000_000 - 1024


def test_the_newest_whole_snapshot_wins_and_keys_alternate_between_two_slots():
    older, newer = (
        records(b"old" * 10, 100, slot=1, chunk_bytes=8),
        records(b"new" * 10, 200, slot=0, chunk_bytes=8),
    )
    assert {r.key.split(b":")[0] for r in older} == {b"1"} and {r.key.split(b":")[0] for r in newer} == {b"0"}
    assert find([*older, *newer]).best.data == b"new" * 10
    assert find([*newer, *older]).best.data == b"new" * 10  # (order of the topic does not decide)


def test_a_snapshot_without_its_manifest_or_with_a_wrong_chunk_is_passed_over():
    whole = records(b"whole" * 20, 100, chunk_bytes=16)
    unfinished = records(b"later" * 20, 200, chunk_bytes=16, replica="died")[:-1]
    damaged = records(b"newer" * 20, 300, chunk_bytes=16, replica="other")
    damaged[2] = damaged[2]._replace(value=b"x" * 16)
    missing = records(b"newest" * 20, 400, chunk_bytes=16, replica="compacted")
    del missing[1]
    finder = find([*whole, *unfinished, *damaged, *missing])
    assert finder.best.training_offset == 100 and finder.broken == 2


def test_records_that_are_not_a_snapshots_are_ignored():
    finder = SnapshotFinder()
    finder.add(Message("snaps", 0, 0, b"hello", b"k"))
    finder.add(Message("snaps", 0, 1, None, b"0:manifest", (("activestream.snapshot", b"1@r"),)))  # tombstone
    finder.add(Message("snaps", 0, 2, b"{not json", b"0:manifest", (("activestream.snapshot", b"1@r"),)))
    assert finder.best is None and finder.broken == 1


def test_a_state_round_trips_through_a_snapshot():
    state = CheckpointState(
        learner={"w": [1.0, 2.0]}, pending=PendingStore(5, 1000), offsets={TopicPartition("t", 0): 9}
    )
    best = find(records(encode_state(state), 9, chunk_bytes=50)).best
    restored = decode_state(best.data)
    assert restored.learner == state.learner and restored.offsets == state.offsets
