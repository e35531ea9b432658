"""Two replicas of one group on a real broker, each with its own checkpoint: a replica that comes back with
a checkpoint older than what the other one committed starts at the group's offset, and no event is decided
twice (the audit trail has one decision per event)."""

from __future__ import annotations

from collections import Counter

import pytest
from reliability_tools import (
    EventStreamer,
    ServiceProcess,
    committed,
    committed_total,
    ensure_service_topics,
    read_all,
    service_options,
    wait_for,
)

from activestream.messages import DecisionRecord


def _processed(bootstrap: str, options: dict, events: int) -> bool:
    return committed_total(committed(bootstrap, options["group_id"]), options["events_topic"]) >= events


@pytest.mark.broker
def test_a_returning_replica_never_decides_again_what_the_other_decided(broker, unique_name, tmp_path):
    bootstrap = broker.bootstrap_servers
    options = service_options(bootstrap, unique_name, tmp_path / "a.ckpt", budget=0.2)
    ensure_service_topics(bootstrap, options, 2)
    b_options = {**options, "checkpoint_path": tmp_path / "b.ckpt"}
    a, b = ServiceProcess(options, tmp_path / "a.log"), ServiceProcess(b_options, tmp_path / "b.log")
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=1e9, limit=300)
    try:
        a.start().wait_assigned()
        streamer.start()
        sent = streamer.stop(drain=True)
        wait_for(
            lambda: a.check_alive() or _processed(bootstrap, options, sent), 60, "the first replica's events"
        )
        assert a.terminate() == 0, a.tail()  # checkpointed and committed at 300

        more = EventStreamer(bootstrap, options["events_topic"], rate_per_s=1e9, limit=600, first=300)
        b.start().wait_assigned()
        more.start()
        sent = more.stop(drain=True)
        wait_for(lambda: b.check_alive() or _processed(bootstrap, options, sent), 60, "the second's events")
        assert b.terminate() == 0, b.tail()  # committed at 600: the first replica's checkpoint says 300

        last = EventStreamer(bootstrap, options["events_topic"], rate_per_s=1e9, limit=700, first=600)
        a.start().wait_assigned()
        last.start()
        sent = last.stop(drain=True)
        wait_for(
            lambda: a.check_alive() or _processed(bootstrap, options, sent), 60, "the returning replica's"
        )
        assert a.terminate() == 0, a.tail()
    finally:
        for service in (a, b):
            service.ensure_stopped()
    decided = Counter(
        DecisionRecord.model_validate_json(m.value).event_id
        for m in read_all(bootstrap, options["decisions_topic"])
    )
    assert len(decided) == 700 and max(decided.values()) == 1, "an event was decided twice, or not at all"
    jumps = [e for e in a.logs() if e.get("message", "").startswith("another replica processed")]
    assert jumps and all(e["group_committed"] > e["our_state_reaches"] for e in jumps)
