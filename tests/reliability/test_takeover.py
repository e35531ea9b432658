"""A SIGKILLed service restarted on the same checkpoint removes its dead predecessor's group member before
joining (``activestream.takeover``), so it gets the partitions without waiting out the dead session.

A dynamic member killed without leaving stays in its group until its session expires, and the rebalance
that hands its partitions to the new process waits for that. The session here is long (40 s), so a restart
that is ready well before it shows that the dead member was removed, not waited out; the group's member
list and the service's log line show it directly. Ready times at the default 6 s session are measured by
``benchmarks/group_takeover.py``.
"""

from __future__ import annotations

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

from activestream.takeover import MemberRecord
from activestream.transport.kafka import KafkaAdminAdapter

SESSION_MS = 40_000
HEARTBEAT_MS = 1_000
#: The earliest the group could hand the dead member's partitions over without the removal.
DEAD_SESSION_S = (SESSION_MS - HEARTBEAT_MS) / 1000

#: Both transports (the dev extra installs confluent-kafka).
TRANSPORTS = ["kafka-python", "confluent"]


def removal_answer(bootstrap: str, group: str, member_id: str) -> str | None:
    """What the coordinator answers to removing ``member_id`` (``None``: it was a member, and is not now).
    Tansu does not answer DescribeGroups in a form either client decodes, so membership is probed so."""
    admin = KafkaAdminAdapter(bootstrap_servers=bootstrap)
    try:
        return admin.remove_members(group, [member_id])[member_id]
    finally:
        admin.close()


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_restart_after_sigkill_removes_the_dead_member_and_is_ready_before_its_session_expires(
    broker, unique_name, tmp_path, transport
):
    bootstrap = broker.bootstrap_servers
    port = free_port()
    checkpoint = tmp_path / "state.ckpt"
    options = service_options(
        bootstrap,
        unique_name,
        checkpoint,
        transport=transport,
        metrics_port=port,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    group = options["group_id"]
    ensure_topics(bootstrap, service_topics(options))
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=50)
    service = ServiceProcess(options, tmp_path / "service.log")
    record = MemberRecord(checkpoint)
    streamer.start()
    try:
        service.start()
        wait_for(lambda: service.check_alive() or ready(port), 90, "the service was ready", 0.1)
        wait_for(lambda: record.load(group) is not None, 30, "the member id was recorded")
        dead = record.load(group)
        time.sleep(2)  # a heartbeat or two, a batch or two
        restart_s = kill_and_restart(service, port)
        assert service.logged(
            "removed the previous process's group member: its partitions are reassigned at once"
        )
        successor = record.load(group)
        assert successor not in (None, dead)
        assert removal_answer(bootstrap, group, dead) == "UnknownMemberIdError"
        assert service.terminate() == 0, service.tail()
    finally:
        service.ensure_stopped()
        streamer.stop()
    print(
        f"{transport}: ready {restart_s:.1f} s after the SIGKILL "
        f"(without the removal: >= {DEAD_SESSION_S:g} s)"
    )
    assert restart_s < DEAD_SESSION_S, (
        f"ready {restart_s:.1f} s after the SIGKILL: the group waited out the dead member's session"
    )


@pytest.mark.broker
@pytest.mark.slow
def test_a_restart_after_sigterm_finds_the_member_gone_and_joins(broker, unique_name, tmp_path):
    """A clean stop left the group already: the removal is answered "unknown member" and nothing fails."""
    bootstrap = broker.bootstrap_servers
    options = service_options(bootstrap, unique_name, tmp_path / "state.ckpt", metrics_port=0)
    ensure_topics(bootstrap, service_topics(options))
    service = ServiceProcess(options, tmp_path / "service.log")
    try:
        service.start().wait_assigned()
        assert service.terminate() == 0, service.tail()
        service.start().wait_assigned()
        assert service.logged("the previous process's group member is gone already"), service.tail()
        assert service.terminate() == 0, service.tail()
    finally:
        service.ensure_stopped()
