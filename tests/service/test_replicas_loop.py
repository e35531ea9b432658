"""Two replicas in one consumer group, each with its own checkpoint: a replica that comes back never
rewinds a partition the other one processed past (its decisions are not made a second time)."""

from __future__ import annotations

from collections import Counter

from test_service_loop import EVENTS, Harness, drain, learner

from activestream.config import Settings
from activestream.service import Service


def replica(harness: Harness, name: str) -> Service:
    settings = Settings(**{**harness.settings.model_dump(), "checkpoint_path": harness.tmp / f"{name}.ckpt"})
    return Service(
        settings,
        harness.broker.consumer(settings.group_id),
        harness.broker.producer(),
        harness.broker.admin(),
        learner=learner(),
        clock_ms=lambda: harness.now,
    )


def test_a_returning_replica_starts_at_the_group_offset_past_its_stale_checkpoint(tmp_path, caplog):
    harness = Harness(tmp_path, checkpoint_interval_seconds=10)
    harness.tmp = tmp_path
    first = replica(harness, "a")
    harness.send_events(range(10))
    drain(first)
    first.shutdown()  # checkpoint and commit at 10; the partition goes to the group
    second = replica(harness, "b")
    harness.send_events(range(10, 30))
    drain(second)
    second.shutdown()  # commits 30: events 10-29 were decided by the second replica
    assert harness.committed()[EVENTS] == 30

    back = replica(harness, "a")  # its checkpoint says 10
    harness.send_events(range(30, 35))
    drain(back)
    asked = Counter(r.event_id for r in harness.requests())
    assert asked == Counter(f"e{i}" for i in range(35)), "an event was decided twice, or not at all"
    assert harness.committed()[EVENTS] == 35
    jumps = [r for r in caplog.records if "another replica processed" in r.getMessage()]
    assert jumps and jumps[0].group_committed == 30 and jumps[0].our_state_reaches == 10
    back.shutdown()


def test_a_replica_restarting_on_its_own_partition_still_replays_from_its_checkpoint(tmp_path):
    # The journal reaches what this replica committed: no jump, the replay gives its decisions back.
    harness = Harness(tmp_path, checkpoint_interval_seconds=3600)
    harness.tmp = tmp_path
    first = replica(harness, "a")
    harness.send_events(range(10))
    drain(first)  # the first checkpoint (assignment) covers 0; commits 10 after each batch
    assert harness.committed()[EVENTS] == 10
    first.consumer.close()  # leaves the group without the loop's close: no checkpoint past 0

    back = replica(harness, "a")
    drain(back)
    assert Counter(r.event_id for r in harness.requests()) == Counter(f"e{i}" for i in range(10))
