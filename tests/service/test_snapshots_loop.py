"""A new replica starts from the group's snapshot and reads the training log from there, not its start.

The replica holding partition 0 of the events topic publishes the group's state every ``snapshot_every``
records of the log (:mod:`activestream.snapshotting`); a replica with no checkpoint restores the newest
whole one and catches up. It must end with the model of a replica that read the whole log: the same
version, the same predictions, every label learned once. Snapshots a writer left unfinished or that do
not match their manifest are passed over for the newest whole one.
"""

from __future__ import annotations

import json

import pytest
from test_group_requests_loop import AnyPartition, learned_once_by_all

from activestream.checkpoint import encode_state
from activestream.config import ConfigError, Settings
from activestream.snapshots import snapshot_records


def manifests(cluster) -> list[dict]:
    return [json.loads(m.value) for m in cluster.broker.messages("snapshots") if m.key.endswith(b"manifest")]


def snapshotting(tmp_path, **overrides) -> AnyPartition:
    return AnyPartition(tmp_path, **{"snapshot_topic": "snapshots", "snapshot_every": 100, **overrides})


def test_a_new_replica_starts_from_the_newest_snapshot_and_ends_with_the_same_model(tmp_path):
    cluster = snapshotting(tmp_path)
    a = cluster.replica("a")
    cluster.run([a])
    published = manifests(cluster)
    assert len(published) >= 3, "no snapshot published every 100 records of the log"
    assert [m["training_offset"] for m in published] == sorted(m["training_offset"] for m in published)
    newest = published[-1]["training_offset"]
    log_end = len(cluster.broker.messages("training"))
    assert 0 < newest <= log_end
    late = cluster.replica("late")  # no checkpoint: starts from the snapshot, not the log's start
    assert late.engine.state.training_offset == newest
    assert late.model_version > 0 and late.engine.state.group is not None
    cluster.run([a, late])
    learned_once_by_all(cluster, [a, late])
    # One writer at a time, never behind the newest: the replica holding events partition 0, caught up.
    offsets = [m["training_offset"] for m in manifests(cluster)]
    assert offsets == sorted(set(offsets)), offsets
    a.shutdown()
    late.shutdown()


def test_unfinished_and_damaged_snapshots_are_passed_over(tmp_path):
    cluster = snapshotting(tmp_path, n_events=600)
    a = cluster.replica("a")
    cluster.run([a])
    whole = manifests(cluster)[-1]["training_offset"]
    data = encode_state(a.engine.group_state(cluster.now))
    beyond = whole + 1000
    unfinished = snapshot_records(
        data,
        topic="snapshots",
        training_offset=beyond,
        replica="x",
        slot=0,
        created_at_ms=0,
        chunk_bytes=4096,
    )[:-1]  # died before its manifest
    damaged = snapshot_records(
        data,
        topic="snapshots",
        training_offset=beyond + 1,
        replica="y",
        slot=1,
        created_at_ms=0,
        chunk_bytes=4096,
    )
    damaged[1] = damaged[1]._replace(value=b"garbage")  # a chunk that does not match the manifest
    for record in (*unfinished, *damaged):
        cluster.producer.produce(record.topic, record.value, record.key, record.headers)
    cluster.producer.flush(1.0)
    late = cluster.replica("late")
    assert late.engine.state.training_offset == whole
    cluster.run([a, late])
    learned_once_by_all(cluster, [a, late])
    a.shutdown()
    late.shutdown()


def test_no_snapshot_means_the_log_is_read_from_its_start(tmp_path):
    cluster = snapshotting(tmp_path, n_events=300, snapshot_every=100_000)
    a = cluster.replica("a")
    cluster.run([a])
    assert not manifests(cluster)
    late = cluster.replica("late")
    assert late.engine.state.training_offset == 0 and late.model_version == 0
    cluster.run([a, late])
    learned_once_by_all(cluster, [a, late])


def test_a_snapshot_topic_needs_a_training_topic_and_one_partition(tmp_path):
    with pytest.raises(ValueError, match="ACTIVESTREAM_SNAPSHOT_TOPIC needs ACTIVESTREAM_TRAINING_TOPIC"):
        Settings(snapshot_topic="snapshots")
    cluster = snapshotting(tmp_path, n_events=10)
    cluster.broker.admin().ensure_topics(["snapshots"], partitions=2)
    with pytest.raises(ConfigError, match="ACTIVESTREAM_SNAPSHOT_TOPIC: topic snapshots has 2 partitions"):
        cluster.replica("a")
