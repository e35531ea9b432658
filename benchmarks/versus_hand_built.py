"""activestream against what a team would build by hand, and against the raw Kafka clients, in one run.

Protocol. An embedded broker (Tansu, in memory, localhost) is preloaded with ``N`` events (default
100,000; ``--quick`` 20,000) of the ``hyperplane`` stream (10 float features, ~300 bytes of JSON). Then,
``--repeats`` times (default 3), in an order that rotates each repeat, each system reads the whole topic in
a process of its own, under a new consumer group:

- **raw kafka-python** / **raw confluent-kafka**: a bare consumer polls batches of 500 and does nothing
  with them (no commit): the ceiling of each client on this machine;
- **activestream run (kafka-python)** / **(confluent)**: the production entry point with default settings
  (margin/split at 10%, both drift arms, the label-free detector, metrics server on, a checkpoint),
  ``ACTIVESTREAM_TRANSPORT`` as named; no labels flow; a cold model;
- **hand-built quixstreams**: ``benchmarks/hand_built/quix_app.py``, ~100 lines: quixstreams + orjson +
  river ``StandardScaler | LogisticRegression`` warmed up on 2,000 labeled examples, margin below a fixed
  threshold (set so that ~10% are asked), label requests produced; ``commit_every`` = 500 as activestream
  commits every batch of 500. It runs in a virtual environment of its own (``--peers-venv``, created on
  first use: quixstreams pins ``confluent-kafka < 2.13``).

Timing. For the systems that commit (activestream, quixstreams) the rate is seen from outside, the same
way for both: committed offsets polled every 50 ms; the window runs from the first commit seen to the
commit of the last event; CPU is the process's user + system time (every thread: librdkafka's and
kafka-python's included) over the same window, from ``/proc/<pid>/stat``. The raw consumers time
themselves from their first non-empty poll to the last record (``getrusage`` for CPU). Group joins and
process start are excluded everywhere.

With ``--profile``, each ``activestream run`` is run once more with py-spy (installed in the peers'
environment) attached for the timed window: the loop thread's samples are grouped by the part of the loop
they fall in, and ``/proc/<pid>/task/*`` gives each thread's share of the CPU (librdkafka's threads are
native: py-spy does not see inside them).

Outputs ``benchmarks/results/versus_hand_built[_quick].md`` and ``.csv``. Run from the repository root,
with the project installed (``make bench`` runs ``--quick``)::

    python benchmarks/versus_hand_built.py --profile
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PEERS_VENV = ROOT / ".bench-venvs" / "hand-built"
APP = ROOT / "benchmarks" / "hand_built" / "quix_app.py"
#: What the hand-built app and the profiler run on (quixstreams pins confluent-kafka < 2.13).
PEERS_REQUIREMENTS = ["quixstreams==3.28.1", "river==0.26.1", "orjson==3.13.0", "py-spy==0.4.3"]
FULL_N, QUICK_N = 100_000, 20_000
BATCH = 500
WARMUP = 2_000
STREAM = "hyperplane"
SEED = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SYSTEMS = (
    "raw kafka-python",
    "raw confluent-kafka",
    "activestream run (kafka-python)",
    "activestream run (confluent)",
    "hand-built quixstreams",
)


@dataclass
class Run:
    system: str
    events: int
    seconds: float
    cpu_seconds: float
    requests: int = -1  # label requests produced (-1: the system produces none)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


# -- the raw consumers (run as ``--raw-consume CLIENT BOOTSTRAP TOPIC N`` in a child process) -------------


def raw_consume(client: str, bootstrap: str, topic: str, n: int) -> dict[str, float]:
    """Read ``n`` records in batches of ``BATCH`` and drop them; seconds and CPU seconds of the window."""
    group = f"raw-{client}-{time.monotonic_ns()}"
    if client == "kafka-python":
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=BATCH,
        )

        def poll() -> int:
            return sum(len(r) for r in consumer.poll(timeout_ms=1000, max_records=BATCH).values())
    else:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])

        def poll() -> int:
            return len(consumer.consume(num_messages=BATCH, timeout=1.0))

    count, started, cpu_start = 0, 0.0, 0.0
    while count < n:
        got = poll()
        if got and not count:
            started, cpu_start = time.perf_counter(), _own_cpu()
        count += got
    result = {"seconds": time.perf_counter() - started, "cpu_seconds": _own_cpu() - cpu_start}
    consumer.close()
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the peers' environment ---------------------------------------------------------------------------------


def peers_python(venv: Path) -> Path:
    """The peers' interpreter, after creating ``venv`` with ``PEERS_REQUIREMENTS`` if it lacks them."""
    python, marker = venv / "bin" / "python", venv / "requirements.txt"
    wanted = "\n".join(PEERS_REQUIREMENTS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        print(f"creating {venv} with {', '.join(PEERS_REQUIREMENTS)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


# -- a committing process, watched from outside -------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Per thread id: its name (``comm``) and CPU seconds."""
    cpu: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return cpu


class Watched:
    """A child process that consumes ``topic`` under ``group`` and commits; timed through its commits."""

    def __init__(self, bootstrap: str, topic: str, group: str, n: int):
        from kafka import KafkaAdminClient
        from kafka import TopicPartition as KafkaTopicPartition

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-watch")
        self.tp, self.group, self.n = KafkaTopicPartition(topic, 0), group, n

    def committed(self) -> int:
        offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        return offsets[self.tp].offset if self.tp in offsets else 0

    def time(self, process: subprocess.Popen, log: Path, on_first=None) -> tuple[float, float, int, dict]:
        """Seconds, CPU seconds and events from the first commit seen to the commit of the last event; and
        each thread's name and CPU seconds over that window, by thread id."""
        first = None
        threads_at_first: dict[int, tuple[str, float]] = {}
        while True:
            if process.poll() is not None and first is None:
                raise RuntimeError(f"{process.args} exited early: {log.read_text()[-2000:]}")
            committed, now = self.committed(), time.perf_counter()
            if committed and first is None:
                first = (now, _process_cpu(process.pid), committed)
                threads_at_first = _thread_cpu(process.pid)
                if on_first:
                    on_first()
            if committed >= self.n:
                assert first is not None
                cpu, threads = _process_cpu(process.pid), _thread_cpu(process.pid)
                per_thread = {
                    tid: (name, cpu - threads_at_first.get(tid, ("", 0.0))[1])
                    for tid, (name, cpu) in threads.items()
                }
                return now - first[0], cpu - first[1], self.n - first[2], per_thread
            time.sleep(0.05)

    def close(self) -> None:
        self.admin.close()


def record_count(bootstrap: str, topic: str) -> int:
    """The records in ``topic`` (partition 0), read back: Tansu's end offset is not the record count when
    producers batch (13 records produced in four batches gave an end offset of 1; activestream's 10,005
    requests gave 9,956 with confluent, 10,004 with kafka-python), which the table once showed."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        if topic not in consumer.topics():
            return 0
        tp = KafkaTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        count = 0
        while batch := consumer.poll(timeout_ms=2000):
            count += sum(len(records) for records in batch.values())
        return count
    finally:
        consumer.close()


# -- the systems ---------------------------------------------------------------------------------------------


def run_raw(client: str, bootstrap: str, topic: str, n: int) -> Run:
    out = subprocess.run(
        [sys.executable, __file__, "--raw-consume", client, bootstrap, topic, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    name = "raw kafka-python" if client == "kafka-python" else "raw confluent-kafka"
    return Run(name, n, result["seconds"], result["cpu_seconds"])


def run_activestream(
    transport: str, bootstrap: str, topic: str, n: int, workdir: Path, profiler: Path | None = None
) -> Run:
    tag = f"{transport}-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "service"), env.get("PYTHONPATH")]))
    env.update(
        {
            "ACTIVESTREAM_BOOTSTRAP_SERVERS": bootstrap,
            "ACTIVESTREAM_TRANSPORT": transport,
            "ACTIVESTREAM_GROUP_ID": f"as-{tag}",
            "ACTIVESTREAM_EVENTS_TOPIC": topic,
            "ACTIVESTREAM_LABELS_TOPIC": f"labels-{tag}",
            "ACTIVESTREAM_REQUESTS_TOPIC": f"requests-{tag}",
            "ACTIVESTREAM_DEAD_LETTER_TOPIC": f"dead-letters-{tag}",
            "ACTIVESTREAM_CHECKPOINT_PATH": str(workdir / f"{tag}.ckpt"),
            "ACTIVESTREAM_METRICS_PORT": "0",  # metrics on, on any free port
        }
    )
    log = workdir / f"{tag}.log"
    watched = Watched(bootstrap, topic, f"as-{tag}", n)
    spy: subprocess.Popen | None = None
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "activestream.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    def attach() -> None:
        nonlocal spy
        if profiler is not None:
            spy_options = [
                "--rate",
                "200",
                "--format",
                "raw",
                "--threads",
                "--output",
                str(workdir / f"{tag}.spy"),
            ]
            spy = subprocess.Popen(
                [str(profiler.parent / "py-spy"), "record", "--pid", str(process.pid), *spy_options],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    try:
        seconds, cpu, events, threads = watched.time(process, log, attach)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        for child in (spy, process):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait(10)
        watched.close()
    extra: dict[str, Any] = {"threads": threads}
    if spy is not None:
        extra["profile"] = loop_profile(workdir / f"{tag}.spy")
    requests = record_count(bootstrap, f"requests-{tag}")
    return Run(f"activestream run ({transport})", events, seconds, cpu, requests, extra)


def run_hand_built(python: Path, bootstrap: str, topic: str, n: int, workdir: Path, warmup: Path) -> Run:
    tag = f"quix-{time.monotonic_ns()}"
    log = workdir / f"{tag}.log"
    watched = Watched(bootstrap, topic, tag, n)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(python),
                str(APP),
                bootstrap,
                topic,
                f"requests-{tag}",
                tag,
                str(n),
                str(BATCH),
                str(warmup),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        seconds, cpu, events, _threads = watched.time(process, log)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        watched.close()
    return Run("hand-built quixstreams", events, seconds, cpu, record_count(bootstrap, f"requests-{tag}"))


# -- the profile ---------------------------------------------------------------------------------------------

#: The part of the loop a sample of the loop thread is in: the first rule (checked in order) whose callee
#: of ``Service.run_once`` and whose marks (any, in the frames below that callee; none: any) match.
PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("poll (Kafka client, records to messages)", ".poll (", ()),
    (
        "parse and validate events",
        "Feeder.feed (",
        ("batch_parsing.py", "activestream/messages.py", "pydantic"),
    ),
    ("drift arms and label-free detector", "Feeder.feed (", ("activestream/drift/",)),
    ("learn", "Feeder.feed (", ("activestream/engine/learning.py",)),
    ("score, measure, policy, budget", "Feeder.feed (", ()),
    ("produce and flush", "Service._publish (", ("Service._produce (",)),
    ("journal", "Service._publish (", ()),
    ("produce and flush", "Service._flush (", ()),
    ("checkpoint and commit", "Checkpointing.", ()),
    ("metrics and health", "Monitoring.", ()),
    ("engine tick (windows, stopping)", "Engine.tick (", ()),
)
OTHER = "the loop's own code"
#: A sample whose innermost frame is one of these is a thread waiting, not working: py-spy counts a thread
#: blocked in ``select`` as active.
WAITING = ("select (selectors.py", "Condition.wait (", "Event.wait (", "sleep (")  # e.g. EpollSelector.select


@dataclass
class Profile:
    """The loop thread's busy samples by part of the loop, and the name py-spy gives each thread id."""

    parts: dict[str, float]
    loop_tid: int
    thread_names: dict[int, str]


def loop_profile(path: Path) -> Profile:
    """From py-spy's raw output (``--threads``): share of the loop thread's busy samples per part."""
    counts: collections.Counter[str] = collections.Counter()
    names: dict[int, str] = {}
    loop_tid = -1
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        tid, _, name = frames[0].removeprefix("thread (").partition("): ")
        names[int(tid)] = name
        loop = next((i for i, f in enumerate(frames) if f.startswith("Service.run_once (")), None)
        if loop is None or any(w in frames[-1] for w in WAITING):
            continue  # another thread (HTTP server, Kafka clients' I/O), start-up, or waiting
        loop_tid = int(tid)
        callee, below = (
            (frames[loop + 1], ";".join(frames[loop + 2 :])) if loop + 1 < len(frames) else ("", "")
        )
        part = next(
            (
                n
                for n, head, marks in PARTS
                if head in callee and (not marks or any(m in below for m in marks))
            ),
            OTHER,
        )
        counts[part] += int(count)
    total = sum(counts.values()) or 1
    order = dict.fromkeys([n for n, _, _ in PARTS] + [OTHER])
    return Profile({part: counts[part] / total for part in order}, loop_tid, names)


# -- the run and the report ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from service_throughput import machine_info

    info = machine_info()
    info["confluent-kafka (activestream)"] = _version("confluent_kafka")
    return info


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


#: Issue #16's targets: (what, system, its reference: a system or a number of events/s, factor).
TARGETS = (
    ("≥ 1.5× the hand-built app", "activestream run (confluent)", "hand-built quixstreams", 1.5),
    ("≥ 80,000 events/s", "activestream run (confluent)", 80_000, 1.0),
    ("≥ the hand-built app", "activestream run (kafka-python)", "hand-built quixstreams", 1.0),
    ("≥ 50% of the raw kafka-python consume", "activestream run (kafka-python)", "raw kafka-python", 0.5),
)


def targets_table(by_system: dict[str, list[Run]]) -> list[str]:
    """The targets, each with the measured median, the figure it needed, and met or missed."""

    def median_rate(system: str) -> float:
        return statistics.median(r.rate for r in by_system[system])

    lines = [
        "## Against the targets",
        "",
        "| system | target | measured | needed | |",
        "|---|---|---|---|---|",
    ]
    for what, system, reference, factor in TARGETS:
        if system not in by_system or (isinstance(reference, str) and reference not in by_system):
            continue
        needed = factor * (median_rate(reference) if isinstance(reference, str) else reference)
        got = median_rate(system)
        verdict = "met" if got >= needed else f"**missed** ({got / needed:.0%} of it)"
        lines.append(f"| {system} | {what} | {got:,.0f} | {needed:,.0f} | {verdict} |")
    return lines


def write_report(runs: Sequence[Run], n: int, repeats: int, info: dict[str, str], name: str) -> Path:
    by_system: dict[str, list[Run]] = collections.defaultdict(list)
    for run in runs:
        if "profile" not in run.extra:  # a profiled run is slowed down by the profiler: not in the medians
            by_system[run.system].append(run)
    quix = statistics.median(r.rate for r in by_system["hand-built quixstreams"])
    profiled = [r for r in runs if "profile" in r.extra]
    flags = (" --quick" if n == QUICK_N else "") + (" --profile" if profiled else "")
    lines = [
        "# activestream against a hand-built quixstreams app and the raw clients",
        "",
        f"Generated by `python benchmarks/versus_hand_built.py{flags}` "
        f"({repeats} alternating repeat(s); medians with min–max): {n:,} events of `{STREAM}` (10 float "
        "features, ~300 bytes of JSON) preloaded into an embedded Tansu broker on the same 2 cores. Each "
        "system reads them in a process of its own under a new group; group joins and start-up excluded. "
        "See the module docstring for the protocol.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| load average at end (1, 5, 15 min) | {', '.join(f'{x:.2f}' for x in os.getloadavg())} |",
        "",
        "## Throughput",
        "",
        "| system | events/s (median, min–max) | CPU µs/event (median) | label requests | vs hand-built |",
        "|---|---|---|---|---|",
    ]
    for system in SYSTEMS:
        got = by_system.get(system, [])
        if not got:
            continue
        rates = [r.rate for r in got]
        rate = statistics.median(rates)
        requests = statistics.median(r.requests for r in got)
        lines.append(
            f"| {system} | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
            f"{statistics.median(r.cpu_us_per_event for r in got):.1f} | "
            f"{'—' if requests < 0 else f'{requests:,.0f}'} | {rate / quix:.2f}× |"
        )
    lines += ["", *targets_table(by_system)]
    if profiled:
        lines += ["", "## Where the time goes", ""]
        lines += [
            "py-spy (200 samples/s) attached to one more run of each `activestream run`, for its timed "
            "window only: the loop thread's on-CPU samples by part of the loop. Then every thread's CPU over "
            "the window (`/proc/<pid>/task/*`, by thread name; `rdk:*` are librdkafka's native threads).",
            "",
        ]
        for run in profiled:
            profile: Profile = run.extra["profile"]
            threads = run.extra["threads"]
            loop_us = threads.get(profile.loop_tid, ("", 0.0))[1] / run.events * 1e6
            lines += [f"### {run.system}: {run.rate:,.0f} events/s under the profiler", ""]
            lines += [
                "| part of the loop | share of the loop thread's busy samples | µs CPU/event |",
                "|---|---|---|",
            ]
            lines += [
                f"| {part} | {share:.0%} | {share * loop_us:.1f} |" for part, share in profile.parts.items()
            ]
            by_name: dict[str, list[float]] = collections.defaultdict(list)
            for tid, (comm, cpu) in threads.items():
                by_name[profile.thread_names.get(tid, comm)].append(cpu)
            lines += ["", "| thread (how many of that name) | CPU µs/event |", "|---|---|"]
            for thread, cpus in sorted(by_name.items(), key=lambda kv: -sum(kv[1])):
                if sum(cpus) > 0:
                    lines.append(f"| {thread} ({len(cpus)}) | {sum(cpus) / run.events * 1e6:.1f} |")
            lines.append("")
    out = RESULTS / f"{name}.md"
    out.write_text("\n".join(lines) + "\n")
    with (RESULTS / f"{name}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "events", "seconds", "events_per_s", "cpu_us_per_event", "requests"])
        for r in runs:
            if "profile" not in r.extra:
                writer.writerow(
                    [
                        r.system,
                        r.events,
                        f"{r.seconds:.3f}",
                        f"{r.rate:.0f}",
                        f"{r.cpu_us_per_event:.2f}",
                        r.requests,
                    ]
                )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} events, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument(
        "--profile", action="store_true", help="one more run of each activestream under py-spy"
    )
    parser.add_argument("--peers-venv", type=Path, default=PEERS_VENV)
    parser.add_argument(
        "--raw-consume", nargs=4, metavar=("CLIENT", "BOOTSTRAP", "TOPIC", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.raw_consume:
        client, bootstrap, topic, n = args.raw_consume
        print(json.dumps(raw_consume(client, bootstrap, topic, int(n))))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from activestream.datasets import make_stream
    from activestream.demo.broker import EmbeddedBroker
    from service_throughput import make_inputs, preload

    n = QUICK_N if args.quick else FULL_N
    repeats = args.repeats or (1 if args.quick else 3)
    python = peers_python(args.peers_venv)
    info = machine()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        workdir, bootstrap, topic = Path(tmp), broker.bootstrap_servers, "events"
        _, records = make_inputs(n, SEED)
        warmup = workdir / "warmup.json"
        warmup.write_text(json.dumps([[x, y] for x, y in make_stream(STREAM, n=WARMUP, seed=SEED)]))
        print(f"preloaded {n:,} events at {preload(bootstrap, topic, records):,.0f}/s", flush=True)
        systems = {
            "raw kafka-python": lambda: run_raw("kafka-python", bootstrap, topic, n),
            "raw confluent-kafka": lambda: run_raw("confluent", bootstrap, topic, n),
            "activestream run (kafka-python)": lambda: run_activestream(
                "kafka-python", bootstrap, topic, n, workdir
            ),
            "activestream run (confluent)": lambda: run_activestream(
                "confluent", bootstrap, topic, n, workdir
            ),
            "hand-built quixstreams": lambda: run_hand_built(python, bootstrap, topic, n, workdir, warmup),
        }
        for repeat in range(repeats):
            order = SYSTEMS[repeat % len(SYSTEMS) :] + SYSTEMS[: repeat % len(SYSTEMS)]
            for system in order:
                run = systems[system]()
                runs.append(run)
                rate, cpu = f"{run.rate:,.0f} events/s", f"{run.cpu_us_per_event:.1f} µs CPU/event"
                print(f"repeat {repeat + 1}: {system}: {rate}, {cpu}", flush=True)
        if args.profile:
            for transport in ("kafka-python", "confluent"):
                runs.append(run_activestream(transport, bootstrap, topic, n, workdir, profiler=python))
    print(
        write_report(runs, n, repeats, info, "versus_hand_built_quick" if args.quick else "versus_hand_built")
    )


if __name__ == "__main__":
    main()
