"""A restarted service removes its killed predecessor's group member before it joins
(``activestream.takeover``): in memory, a member that never polls again holds its partitions for good, as
a dead Kafka member does until its session expires."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_service_loop import EVENTS, Harness, drain

from activestream.config import Settings
from activestream.ownership import CheckpointLock
from activestream.service import Service
from activestream.takeover import MemberRecord, Takeover
from activestream.transport.memory import MemoryBroker


@pytest.fixture
def lock(tmp_path: Path):
    held = CheckpointLock.acquire(tmp_path / "state.ckpt")  # as `activestream run` holds it
    yield held
    held.release()


def crash(harness: Harness) -> str:
    """Run a service until it decided the events sent, then abandon it (no close: no LeaveGroup)."""
    service = harness.service()
    drain(service)
    member_id = MemberRecord(harness.settings.checkpoint_path).load(harness.settings.group_id)
    assert member_id == service.consumer.member_id()
    return member_id


def test_a_restart_removes_the_dead_member_and_takes_its_partitions_at_once(tmp_path, lock, caplog):
    harness = Harness(tmp_path)
    harness.send_events(range(5))
    dead = crash(harness)
    harness.send_events(range(5, 10))
    successor = harness.service()
    with caplog.at_level(logging.INFO, logger="activestream.takeover"):
        drain(successor)
    assert successor.consumer.assignment(), "the dead member still holds the partitions"
    assert harness.committed()[EVENTS] == 10  # the events sent after the crash were decided
    removed = [r for r in caplog.records if r.getMessage().startswith("removed the previous process")]
    assert [r.member_id for r in removed] == [dead]
    assert (
        MemberRecord(harness.settings.checkpoint_path).load("activestream") == successor.consumer.member_id()
    )
    successor.shutdown()


def test_another_replica_with_its_own_checkpoint_removes_nobody(tmp_path):
    harness = Harness(tmp_path)
    harness.send_events(range(5))
    crash(harness)
    other = Settings(**{**harness.settings.model_dump(), "checkpoint_path": tmp_path / "other.ckpt"})
    replica = Service(
        other, harness.broker.consumer(other.group_id), harness.broker.producer(), harness.broker.admin()
    )
    drain(replica)
    assert not replica.consumer.assignment()  # the dead member keeps them, as until its session expires


def test_nothing_is_removed_by_a_process_that_does_not_hold_the_checkpoint_lock(tmp_path):
    broker = MemoryBroker()
    checkpoint = tmp_path / "state.ckpt"
    MemberRecord(checkpoint).save("activestream", "activestream-member-1")
    admin = _CountingAdmin(broker)
    assert (
        Takeover(broker.consumer("activestream"), admin, checkpoint, "activestream", "").before_join() is None
    )
    assert admin.calls == 0


@pytest.mark.parametrize(
    ("record", "static", "why"),
    [(None, False, "no record"), ("other-group", False, "another group's"), ("activestream", True, "static")],
)
def test_nothing_is_removed_without_a_record_of_this_group_or_with_static_membership(
    tmp_path, lock, record, static, why
):
    broker = MemoryBroker()
    checkpoint = tmp_path / "state.ckpt"
    if record is not None:
        MemberRecord(checkpoint).save(record, "activestream-member-1")
    admin = _CountingAdmin(broker)
    takeover = Takeover(
        broker.consumer("activestream"), admin, checkpoint, "activestream", "pod-0" if static else ""
    )
    assert takeover.before_join() is None, why
    assert admin.calls == 0, why


def test_a_failed_removal_is_a_warning_and_the_start_goes_on(tmp_path, lock, caplog):
    broker = MemoryBroker()
    checkpoint = tmp_path / "state.ckpt"
    MemberRecord(checkpoint).save("activestream", "activestream-member-7")
    admin = broker.admin(reachable=False)
    takeover = Takeover(broker.consumer("activestream"), admin, checkpoint, "activestream", "")
    assert takeover.before_join() is None
    assert any("could not remove" in r.getMessage() for r in caplog.records)


def test_a_member_that_left_already_is_reported_and_not_counted_as_removed(tmp_path, lock, caplog):
    broker = MemoryBroker()
    checkpoint = tmp_path / "state.ckpt"
    MemberRecord(checkpoint).save("activestream", "activestream-member-7")
    takeover = Takeover(broker.consumer("activestream"), broker.admin(), checkpoint, "activestream", "")
    with caplog.at_level(logging.INFO, logger="activestream.takeover"):
        assert takeover.before_join() is None
    (line,) = [r for r in caplog.records if "gone already" in r.getMessage()]
    assert line.answer == "UnknownMemberIdError"


def test_the_record_keeps_one_member_per_group(tmp_path):
    record = MemberRecord(tmp_path / "state.ckpt")
    record.save("activestream", "m-1")
    record.save("activestream.requests.r1", "m-2")
    record.save("activestream", "m-3")
    assert (record.load("activestream"), record.load("activestream.requests.r1")) == ("m-3", "m-2")


def test_an_unreadable_record_counts_as_none(tmp_path):
    record = MemberRecord(tmp_path / "state.ckpt")
    for text in ("", "not json", "[1, 2]", '{"activestream": 3}', '{"activestream": ""}'):
        record.path.write_text(text)
        assert record.load("activestream") is None, text


class _CountingAdmin:
    def __init__(self, broker: MemoryBroker) -> None:
        self._admin, self.calls = broker.admin(), 0

    def remove_members(self, group_id, member_ids):
        self.calls += 1
        return self._admin.remove_members(group_id, member_ids)


def test_a_record_that_cannot_be_written_is_a_warning_and_tried_again_at_the_next_assignment(
    tmp_path, caplog
):
    broker = MemoryBroker()
    checkpoint = tmp_path / "state.ckpt"
    MemberRecord(checkpoint).path.mkdir()  # the record's path is taken: every write fails
    consumer = broker.consumer("activestream")
    consumer.subscribe(["events"])
    consumer.poll(0, 1)
    takeover = Takeover(consumer, broker.admin(), checkpoint, "activestream", "")
    takeover.joined()
    assert any("could not record" in r.getMessage() for r in caplog.records)
    MemberRecord(checkpoint).path.rmdir()
    takeover.joined()  # not remembered as recorded: written now
    assert MemberRecord(checkpoint).load("activestream") == consumer.member_id()
