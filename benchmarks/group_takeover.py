"""How long a SIGKILLed consumer's partition takes to reach its replacement on the embedded broker, with
and without removing the dead member first (``activestream.takeover``).

Two parts, each ``--kills`` times:

- **A bare kafka-python consumer** (no activestream) joins a group on a 1-partition topic and is killed; a
  new process with the same settings starts at once. Seconds from the kill to its first assignment, per
  session timeout, *waiting* (the replacement just joins) and *removing* (it first removes the dead
  member, as activestream does). The floor under everything else.
- **``activestream run``** with default settings but the session, SIGKILLed while events flow and
  restarted on the same checkpoint: seconds from the kill to ``/readyz`` answering 200. *Removing* is
  the default; *waiting* deletes the ``<checkpoint>.member`` record before the restart, which is what a
  restart without it does (a first start, a new volume). The two alternate on one service.

Writes ``group_takeover.md`` with the machine::

    python benchmarks/group_takeover.py --sessions 3000,6000,10000 --service-sessions 6000,10000 --kills 8

The consumers run in subprocesses, so a kill is a real SIGKILL: no LeaveGroup reaches the broker.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "tests" / "reliability")]

_MEMBER = r"""
import sys
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, MemberToRemove
bootstrap, session, dead = sys.argv[1], int(sys.argv[2]), sys.argv[3]
group = f"takeover-{session}-{'waiting' if dead == '-' else 'removing'}"
if dead not in ("-", "+"):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.remove_group_members(group, [MemberToRemove(member_id=dead)])
    admin.close()
consumer = KafkaConsumer(
    bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=session,
    heartbeat_interval_ms=session // 3, enable_auto_commit=False,
)
consumer.subscribe(["takeover"])
while not consumer.assignment():
    consumer.poll(100)
print("assigned", consumer.group_metadata().member_id, flush=True)
while True:
    consumer.poll(100)
"""


def _member(bootstrap: str, session_ms: int, dead: str) -> subprocess.Popen[str]:
    """``dead``: the member id to remove first, ``"-"`` to just join, ``"+"`` for the first of a series
    that will remove."""
    return subprocess.Popen(
        [sys.executable, "-c", _MEMBER, bootstrap, str(session_ms), dead], stdout=subprocess.PIPE, text=True
    )


def _wait_assigned(member: subprocess.Popen[str]) -> str:
    assert member.stdout is not None
    said = member.stdout.readline().split()
    if not said or said[0] != "assigned":
        raise RuntimeError(f"the consumer did not join its group (said {said!r})")
    return said[1]


def takeovers(bootstrap: str, session_ms: int, kills: int, alive_s: float, remove: bool) -> list[float]:
    """Seconds from each SIGKILL to the replacement's first assignment."""
    member = _member(bootstrap, session_ms, "+" if remove else "-")
    member_id = _wait_assigned(member)
    seconds = []
    try:
        for _ in range(kills):
            time.sleep(alive_s)
            member.kill()
            member.wait()
            killed = time.monotonic()
            member = _member(bootstrap, session_ms, member_id if remove else "-")
            member_id = _wait_assigned(member)
            seconds.append(time.monotonic() - killed)
    finally:
        member.kill()
        member.wait()
    return seconds


def service_restarts(bootstrap: str, session_ms: int, kills: int, alive_s: float) -> dict[bool, list[float]]:
    """Seconds from each SIGKILL of ``activestream run`` to its successor's ``/readyz`` answering 200, per
    variant (``True``: removing), alternating between the two on one service, ``kills`` of each."""
    import reliability_tools as rt

    from activestream.takeover import MemberRecord

    work = Path(tempfile.mkdtemp(prefix="takeover-"))
    options = rt.service_options(
        bootstrap,
        lambda what: f"takeover-{session_ms}-{what}",
        work / "state.ckpt",
        metrics_port=rt.free_port(),
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=session_ms // 3,
    )
    rt.ensure_topics(bootstrap, rt.service_topics(options))
    streamer = rt.EventStreamer(bootstrap, options["events_topic"], rate_per_s=50)
    service = rt.ServiceProcess(options, work / "service.log")
    ready: Callable[[], bool] = lambda: _ready(rt, options["metrics_port"])  # noqa: E731
    seconds: dict[bool, list[float]] = {False: [], True: []}
    streamer.start()
    try:
        service.start()
        rt.wait_for(lambda: service.check_alive() or ready(), 120, "the service was ready", 0.05)
        for kill in range(2 * kills):
            remove = kill % 2 == 1
            time.sleep(alive_s)
            service.kill()
            killed = time.monotonic()
            if not remove:
                MemberRecord(options["checkpoint_path"]).path.unlink(missing_ok=True)
            service.start()
            rt.wait_for(
                lambda: service.check_alive() or ready(), 120, "the restarted service was ready", 0.05
            )
            seconds[remove].append(time.monotonic() - killed)
    finally:
        service.ensure_stopped()
        streamer.stop()
    return seconds


def _ready(rt, port: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return rt.get(port, "/readyz")[0] == 200
    except OSError:
        return False


def start_time(module: str) -> float:
    """Seconds for the same Python to start a process that imports ``module`` and exits."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=_service_env())
    return time.monotonic() - started


def _service_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "service"), os.environ.get("PYTHONPATH", "")]),
    }


def _row(label: str, waiting: list[float], removing: list[float]) -> str:
    def cell(seconds: list[float]) -> str:
        return ", ".join(f"{s:.2f}" for s in seconds) + f" (median **{statistics.median(seconds):.2f}**)"

    return f"| {label} | {cell(waiting)} | {cell(removing)} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="3000,6000,10000", help="session timeouts, ms, comma-separated")
    parser.add_argument(
        "--service-sessions", default="6000,10000", help="session timeouts of the activestream run part, ms"
    )
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--alive", type=float, default=2.0, help="seconds a member lives before its kill")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from kafka.admin import KafkaAdminClient, NewTopic

    from activestream.demo.broker import EmbeddedBroker

    sessions = [int(s) for s in args.sessions.split(",")]
    bare, service = [], []
    with EmbeddedBroker() as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([NewTopic("takeover", 1, 1)])
        admin.close()
        for session in sessions:
            pair = [
                takeovers(broker.bootstrap_servers, session, args.kills, args.alive, r) for r in (False, True)
            ]
            bare.append((session, *pair))
            print(f"bare consumer, session {session} ms: waiting {pair[0]}, removing {pair[1]}", flush=True)
        for session in [int(s) for s in args.service_sessions.split(",")]:
            restarts = service_restarts(broker.bootstrap_servers, session, args.kills, args.alive)
            service.append((session, restarts[False], restarts[True]))
            print(f"activestream run, session {session} ms: {restarts}", flush=True)
    lines = [
        "# Group takeover on the embedded broker",
        "",
        "Generated by `python benchmarks/group_takeover.py"
        f" --sessions {args.sessions} --service-sessions {args.service_sessions} --kills {args.kills}`"
        f" on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC: {platform.processor() or 'cpu'}"
        f" ×{os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}, 1-min load at the"
        f" end {os.getloadavg()[0]:.1f}. Each member lives {args.alive:g} s, is SIGKILLed, and a replacement"
        " starts at once. *Waiting*: the replacement just joins, and the group waits out the dead member's"
        " session. *Removing*: it first removes the dead member (`activestream.takeover`; activestream's"
        " default when the checkpoint's `.member` record is there).",
        "",
        "## A bare kafka-python consumer: seconds from the kill to the replacement's first assignment",
        "",
        f"Process start included: {start_time('kafka'):.2f} s to start Python and import kafka-python here.",
        "",
        "| session timeout | waiting (s) | removing (s) |",
        "|---|---|---|",
        *(_row(f"{session / 1000:g} s", waiting, removing) for session, waiting, removing in bare),
        "",
        "## `activestream run`: seconds from the kill to `/readyz` answering 200",
        "",
        "Default settings but the session (heartbeat a third of it; 6 s is the default), events flowing at"
        " 50/s, restarted on the same checkpoint, the two variants alternating on one service;"
        f" {start_time('activestream.cli'):.2f} s to start Python and import activestream's CLI here (the"
        " service imports river, scipy and pydantic once it runs).",
        "",
        "| session timeout | waiting (s) | removing (s) |",
        "|---|---|---|",
        *(_row(f"{session / 1000:g} s", waiting, removing) for session, waiting, removing in service),
        "",
        "Tansu holds every join about half the session timeout even when no member is missing, so a restart"
        " is ready no sooner than the service's start (~3 s, mostly imports) plus that hold. At a 6 s"
        " session the dead member has nearly expired by then anyway, and removing it changes the median"
        " little; with a longer session the whole dead session is saved. A *removing* restart whose start is"
        " slow finds the member gone already and waits like the others. On Apache Kafka a join with the dead"
        " member removed waits only `group.initial.rebalance.delay.ms` (3 s by default) when the group was"
        " left empty (from the protocol; no Apache Kafka broker here to measure it).",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "group_takeover.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
