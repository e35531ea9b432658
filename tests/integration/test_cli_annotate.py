"""``activestream annotate --events N`` against the embedded broker: it answers the requests for its N
events, shows its progress, and stops by itself (it used to run forever, silently)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from activestream.learner import Decision
from activestream.messages import Event, to_json
from activestream.outgoing import label_request_for
from activestream.transport.kafka import KafkaAdminAdapter, KafkaProducerAdapter

pytestmark = pytest.mark.broker

ACTIVESTREAM = Path(sys.executable).parent / "activestream"


def test_annotate_stops_after_its_events_and_shows_progress(broker, unique_name, tmp_path):
    requests, labels = unique_name("requests"), unique_name("labels")
    admin = KafkaAdminAdapter(bootstrap_servers=broker.bootstrap_servers)
    admin.ensure_topics([requests, labels])
    admin.close()
    producer = KafkaProducerAdapter(bootstrap_servers=broker.bootstrap_servers)
    decision = Decision(1, {0: 0.4, 1: 0.6}, 0.8, 0.5, True, "margin/confidence_split", "uncertain")
    # Three of its five events are asked, and one past them (the stream went further: not answered).
    for event_id in ("ev-0000000", "ev-0000002", "ev-0000004", "ev-0000999"):
        request = label_request_for(
            Event(id=event_id, features={"x": 1.0}), decision, model_version=1, now_ms=0, ttl_ms=60_000
        )
        producer.produce(requests, to_json(request), key=event_id.encode())
    producer.flush(30.0)
    producer.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")} | {
        "ACTIVESTREAM_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "ACTIVESTREAM_REQUESTS_TOPIC": requests,
        "ACTIVESTREAM_LABELS_TOPIC": labels,
        "ACTIVESTREAM_GROUP_ID": unique_name("group"),
        "ACTIVESTREAM_SESSION_TIMEOUT_MS": "6000",
        "ACTIVESTREAM_HEARTBEAT_INTERVAL_MS": "1000",
    }
    argv = ["annotate", "--dataset", "sea_abrupt", "--events", "5", "--label-delay", "0"]
    argv += ["--idle-seconds", "2"]
    done = subprocess.run(
        [str(ACTIVESTREAM), *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"posted 3 labels to {labels}" in done.stdout
    assert "annotate: 3 requests of 5 events, 3 labels posted, 0 waiting, 1 for other events" in done.stderr
