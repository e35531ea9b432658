"""Two replicas on a real broker with a training topic: labels are produced with no key (spread over the
labels partitions, whatever event they answer), each replica joins the labels it reads — its own requests
at once, the other's through the log — every replica learns every label once, in the log's order, and
both end with the same model (the same version and the same predictions on a probe set), read from their
final checkpoints."""

from __future__ import annotations

import json

import pytest
from reliability_tools import (
    Annotator,
    EventStreamer,
    ServiceProcess,
    committed,
    committed_total,
    ensure_service_topics,
    features_for,
    labels_on_log,
    learned_from_log,
    read_all,
    sample,
    service_options,
    wait_for,
)

from activestream.checkpoint import load_checkpoint

EVENTS = 800
PROBE = [features_for(i, seed=99) for i in range(300)]


@pytest.mark.broker
@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_two_replicas_learn_every_label_once_and_end_with_the_same_model(
    broker, unique_name, tmp_path, transport
):
    bootstrap = broker.bootstrap_servers
    options = service_options(
        bootstrap,
        unique_name,
        tmp_path / "a.ckpt",
        budget=0.2,
        training_topic=unique_name("training"),
        transport=transport,
    )
    ensure_service_topics(bootstrap, options, partitions=4)  # the training topic: one partition
    replicas = [
        ServiceProcess(options, tmp_path / "a.log"),
        ServiceProcess({**options, "checkpoint_path": tmp_path / "b.ckpt"}, tmp_path / "b.log"),
    ]
    annotator = Annotator(
        bootstrap, options["requests_topic"], options["labels_topic"], mean_delay_s=0.05, keyed=False
    )
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=2000, limit=EVENTS)
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_assigned()
        ports = [replica.http_port() for replica in replicas]
        annotator.start()
        streamer.start()
        streamer.stop(drain=True)

        def settled() -> bool:
            for replica in replicas:
                replica.check_alive()
            decided = committed_total(committed(bootstrap, options["group_id"]), options["events_topic"])
            stats = annotator.stats
            answered = (
                annotator.caught_up and not annotator.waiting and len(stats.posted) == len(stats.distinct)
            )
            return (
                decided == EVENTS
                and answered
                and all(learned_from_log(port) == len(stats.posted) for port in ports)
            )

        wait_for(settled, 120, "every label learned by both replicas", interval_s=0.5)
        joined = [sample(port, 'activestream_labels_total{status="learned"}') for port in ports]
        for replica in replicas:
            assert replica.terminate() == 0, replica.tail()
    finally:
        for replica in replicas:
            replica.ensure_stopped()
        stats = annotator.stop()
    assert len(stats.posted) > 50
    appended = labels_on_log(bootstrap, options["training_topic"])
    assert sorted(appended) == sorted(stats.posted), "a label was appended twice, or not at all"
    log = [json.loads(record.value) for record in read_all(bootstrap, options["training_topic"])]
    through_log = sum(record.get("kind") == "label" for record in log)
    assert through_log > 0, "no label was read by the replica that did not ask for it"
    print(f"{len(stats.posted)} labels: {through_log} joined by the replica that did not ask")
    assert all(joined) and sum(joined) == len(stats.posted), f"labels joined by each replica: {joined}"
    states = [load_checkpoint(path) for path in (tmp_path / "a.ckpt", tmp_path / "b.ckpt")]
    assert all(state is not None for state in states)
    assert [state.model_version for state in states] == [len(stats.posted)] * 2
    predictions = [[state.learner.classifier.predict_proba_one(x) for x in PROBE] for state in states]
    assert predictions[0] == predictions[1], "the replicas' models differ"
