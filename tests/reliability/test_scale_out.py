"""Scale out on a real broker: replicas come, go, die and restart while events and labels flow, and the
group still learns every label once, into one model.

4-partition events and labels topics, a one-partition training log, budget 20%. Labels are produced with
no key (spread over the labels partitions, whatever event they answer: an annotation tool that does not
use murmur2). While 9,000 events stream in (60 s): one replica, then three (1 → 3), one of them SIGKILLed
(3 → 2), then a rolling restart of the two left (SIGTERM, start again, one after the other). At the end:
every label posted learned exactly once by each replica left, both with the same model (the same version
and the same predictions on a probe set), nothing dead-lettered, and the group's spend within ±0.5 point
of the budget. The two replicas added start from the group's newest snapshot (one every 100 records of
the log), not from the log's start, and still end with the same model.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from reliability_tools import (
    Annotator,
    EventStreamer,
    ServiceProcess,
    committed,
    committed_total,
    ensure_service_topics,
    features_for,
    read_all,
    read_partitions,
    sample,
    service_options,
    wait_for,
)

from activestream.checkpoint import load_checkpoint
from activestream.engine.state import APPLIED

EVENTS = 9000
BUDGET = 0.2
PROBE = [features_for(i, seed=99) for i in range(300)]
TRAINING_OFFSET = "activestream_training_log_offset"
#: Records of the training log between snapshots: r0 alone writes a few before r1 and r2 start.
SNAPSHOT_EVERY = 100


def started_from_snapshot(replica: ServiceProcess) -> int:
    """The log offset of the snapshot this run of ``replica`` started from (0: none)."""
    found = [e for e in replica.logs() if e.get("message") == "snapshot of the group's model found"]
    return found[0]["training_offset"] if found else 0


def assignments(replica: ServiceProcess) -> int:
    """How many assignments (with partitions) this run of ``replica`` received."""
    logs = replica.logs()
    return sum(e.get("message") == "partitions assigned" and bool(e.get("partitions")) for e in logs)


def rebalanced(replicas: list[ServiceProcess], before: list[int], what: str) -> None:
    """Wait until every replica got an assignment more than ``before``: the group settled again (each step
    waits for the last one's rebalance, as an orchestrator's readiness gate would)."""
    wait_for(
        lambda: all(r.check_alive() or assignments(r) > n for r, n in zip(replicas, before, strict=True)),
        60,
        what,
    )


@pytest.mark.broker
@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_replicas_scaled_killed_and_restarted_learn_every_label_once_into_one_model(
    broker, unique_name, tmp_path, transport
):
    bootstrap = broker.bootstrap_servers
    options = service_options(
        bootstrap,
        unique_name,
        tmp_path / "r0.ckpt",
        budget=BUDGET,
        training_topic=unique_name("training"),
        snapshot_topic=unique_name("snapshots"),
        snapshot_every=SNAPSHOT_EVERY,
        transport=transport,
    )
    ensure_service_topics(bootstrap, options, partitions=4)
    replicas = [
        ServiceProcess({**options, "checkpoint_path": tmp_path / f"r{i}.ckpt"}, tmp_path / f"r{i}.log")
        for i in range(3)
    ]
    r0, r1, r2 = replicas
    annotator = Annotator(
        bootstrap, options["requests_topic"], options["labels_topic"], mean_delay_s=0.5, keyed=False
    )
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=150, limit=EVENTS)
    steps = []
    try:
        r0.start().wait_assigned()
        annotator.start()
        streamer.start()
        time.sleep(4)
        steps.append(f"1 -> 3 at {streamer.sent} events")
        r1.start(), r2.start()
        r1.wait_assigned(), r2.wait_assigned()
        steps.append(f"r1, r2 from the snapshots at {started_from_snapshot(r1)}, {started_from_snapshot(r2)}")
        assert started_from_snapshot(r1) > 0 and started_from_snapshot(r2) > 0, (
            "a new replica read the whole log"
        )
        time.sleep(3)
        steps.append(f"SIGKILL r1 at {streamer.sent}")
        before = [assignments(r) for r in (r0, r2)]
        r1.kill()
        rebalanced([r0, r2], before, "r0 and r2 took the killed replica's partitions")  # its session: 6 s
        for replica, other in ((r0, r2), (r2, r0)):  # the rolling restart
            steps.append(f"restart {replica.log_path.stem} at {streamer.sent}")
            before = [assignments(other)]
            assert replica.terminate() == 0, replica.tail()
            replica.start().wait_assigned()
            rebalanced([other], before, "the group settled after a restart")
            time.sleep(1)
        assert streamer.sent < EVENTS, f"the stream ended before the last step: {steps}"
        streamer.stop(drain=True)
        live = [r0, r2]
        ports = [replica.http_port() for replica in live]

        def settled() -> bool:
            for replica in live:
                replica.check_alive()
            offsets = committed(bootstrap, options["group_id"])
            stats = annotator.stats
            log_end = read_partitions(bootstrap, options["training_topic"])[1].get(0, 0)
            return (
                committed_total(offsets, options["events_topic"]) == EVENTS
                and annotator.caught_up
                and annotator.waiting == 0
                and len(stats.posted) == len(stats.distinct)
                and committed_total(offsets, options["labels_topic"]) == len(stats.posted)
                and all(sample(port, TRAINING_OFFSET) >= log_end for port in ports)
            )

        wait_for(settled, 180, "every event decided, every label learned by both replicas", interval_s=0.5)
        for replica in live:
            assert replica.terminate() == 0, replica.tail()
    finally:
        for replica in replicas:
            replica.ensure_stopped()
        streamer.stop_event.set()
        stats = annotator.stop()
    posted = stats.posted
    states = [load_checkpoint(replica.options["checkpoint_path"]) for replica in live]
    for state in states:
        learned = {rid for rid in posted if state.applied.status_of_request(rid) == APPLIED}
        assert len(learned) == len(posted), f"{len(posted) - len(learned)} labels lost"
        assert state.model_version == state.applied.count(APPLIED) == len(posted), "a label learned twice"
    predictions = [[state.learner.classifier.predict_proba_one(x) for x in PROBE] for state in states]
    assert predictions[0] == predictions[1], "the replicas' models differ"
    dead = [dict(r.headers) for r in read_all(bootstrap, options["dead_letter_topic"])]
    assert dead == [], f"dead-lettered: {dead[:3]}"
    decisions: dict[str, list[bool]] = defaultdict(list)
    for record in read_all(bootstrap, options["decisions_topic"]):
        entry = json.loads(record.value)
        decisions[entry["event_id"]].append(entry["ask"])
    asked = {event for event, verdicts in decisions.items() if any(verdicts)}
    spend = len(asked) / EVENTS
    redecided = sum(len(verdicts) > 1 for verdicts in decisions.values())
    through_log = sum(
        json.loads(r.value).get("kind") == "label" for r in read_all(bootstrap, options["training_topic"])
    )
    print(
        f"steps: {steps}; {len(posted)} labels, {through_log} joined through the log; spend {spend:.4f}; "
        f"{redecided} events decided again by the replica that took a killed replica's partition"
    )
    assert len(decisions) == EVENTS and len(posted) == len(asked)
    assert abs(spend - BUDGET) <= 0.005, f"spend {spend:.4f}"
