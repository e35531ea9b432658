"""Static group membership (``ACTIVESTREAM_GROUP_INSTANCE_ID``): a SIGKILLed service restarted under the same
instance id gets its partitions back without waiting out its dead predecessor's session.

A dynamic member cannot: the group keeps the dead member until its session expires (``session_timeout_ms``
after its last heartbeat), and the rebalance that hands the partitions to the new process waits for it. So
a restart that is ready sooner than ``session_timeout_ms - heartbeat_interval_ms`` after the kill shows
that the broker took the new process for the old member. The session is long here to keep that bound far
from the join time: the embedded Tansu broker (0.6.0) honours the instance id but still holds a join for
about half the session timeout and a SyncGroup for ~3 s, so a static restart is never instant on it
(deploy/README.md: 12-14 s at the default 10 s session, 21-23 s without; here, with a 40 s session,
~30 s, and 75 s without the instance id). Apache Kafka answers a known static member at once.
"""

from __future__ import annotations

import importlib.util
import time

import pytest
from reliability_tools import (
    EventStreamer,
    ServiceProcess,
    ensure_topics,
    free_port,
    kill_and_restart,
    ready,
    service_options,
    service_topics,
    wait_for,
)

SESSION_MS = 40_000
HEARTBEAT_MS = 1_000
#: The earliest a dynamic member could be ready again after a SIGKILL.
DEAD_SESSION_S = (SESSION_MS - HEARTBEAT_MS) / 1000

TRANSPORTS = [
    "kafka-python",
    pytest.param(
        "confluent",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("confluent_kafka") is None, reason="confluent-kafka is not installed"
        ),
    ),
]


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_static_member_is_ready_again_before_its_dead_session_expires(
    broker, unique_name, tmp_path, transport
):
    bootstrap = broker.bootstrap_servers
    port = free_port()
    options = service_options(
        bootstrap,
        unique_name,
        tmp_path / "state.ckpt",
        transport=transport,
        metrics_port=port,
        group_instance_id=unique_name("pod"),
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    ensure_topics(bootstrap, service_topics(options))
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=50)
    service = ServiceProcess(options, tmp_path / "service.log")
    streamer.start()
    try:
        service.start()
        wait_for(lambda: service.check_alive() or ready(port), 90, "the service was ready", 0.1)
        time.sleep(2)  # a heartbeat or two, a batch or two
        restart_s = kill_and_restart(service, port)
        assert service.terminate() == 0, service.tail()
    finally:
        service.ensure_stopped()
        streamer.stop()
    print(
        f"{transport}: ready {restart_s:.1f} s after the SIGKILL (a dynamic member: >= {DEAD_SESSION_S:g} s)"
    )
    assert restart_s < DEAD_SESSION_S, (
        f"ready {restart_s:.1f} s after the SIGKILL: the group waited out the dead member's session"
    )
