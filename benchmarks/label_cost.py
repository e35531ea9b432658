"""What learning the labels costs the loop: CPU per event in memory, without labels and with every request
answered at once (labels at the budget rate), for this tree and, side by side, for other git revisions.

Protocol. The service's loop on the in-memory transport (no Kafka client: the service's own cost), default
settings (margin/split at 10%, drift arms around ``logreg``), a cold model, ``--events`` events of the
``hyperplane`` stream in batches of 500; with labels, after each batch every new label request is answered
with the stream's label, so about one event in ten brings a label to learn. CPU is this process's time
inside ``Service.run_once``. Each ``--rev`` is checked out in a temporary git worktree and run with its own
``service/`` first on ``PYTHONPATH``; revisions and the working tree alternate, ``--repeats`` times.

    python benchmarks/label_cost.py --rev bd53aaa --rev HEAD

Writes ``benchmarks/results/label_cost.md`` (``--out``). ``--young N`` sets the garbage collector's
young-generation threshold in every run, e.g. to what ``activestream run`` sets (10,000) for revisions
that did not set it yet.

With ``--profile``, the working tree runs once more with every request answered (over at least
``PROFILE_EVENTS`` events) under py-spy (1,000 samples/s, from the hand-built app's virtual environment
of ``versus_hand_built.py``, created if missing), and the report says where a label's time goes: the
loop's on-CPU samples by part of the label path, in µs per label learned (each part's share of the
samples times the run's CPU per event, times events per label).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500


def measure(n: int, with_labels: bool) -> dict[str, float]:
    """One run in this process (whatever ``activestream`` is importable): CPU µs per event."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from activestream.config import Settings
    from activestream.datasets import make_stream
    from activestream.service import Service
    from activestream.transport.memory import MemoryBroker
    from service_throughput import STREAM, WARMUP, make_inputs

    _, records = make_inputs(n, 1)
    stream = list(make_stream(STREAM, n=WARMUP + n, seed=1))[WARMUP:]
    truth = {f"ev-{i:07d}": y for i, (_, y) in enumerate(stream)}
    with tempfile.TemporaryDirectory() as tmp:
        broker = MemoryBroker()
        settings = Settings(checkpoint_path=Path(tmp) / "state.ckpt")
        service = Service(settings, broker.consumer(settings.group_id), broker.producer(), broker.admin())
        outside = broker.producer()
        service.start()
        answered, cpu = 0, 0.0
        for start in range(0, n, BATCH):
            for key, value in records[start : start + BATCH]:
                outside.produce(settings.events_topic, value, key)
            outside.flush(1.0)
            started = time.process_time()
            while service.run_once():
                pass
            cpu += time.process_time() - started
            requests = broker.messages(settings.requests_topic)
            for message in requests[answered:] if with_labels else []:
                request = json.loads(message.value)
                event_id = request["event_id"]
                label = {"request_id": request["request_id"], "event_id": event_id, "label": truth[event_id]}
                outside.produce(settings.labels_topic, json.dumps(label).encode(), event_id.encode())
            outside.flush(1.0)
            answered = len(requests)
        started = time.process_time()
        while service.run_once():
            pass
        cpu += time.process_time() - started
    return {"cpu_us_per_event": cpu / n * 1e6, "requests": answered}


def measure_in(tree: Path, n: int, with_labels: bool, young: int = 0, prefix: Sequence[str] = ()) -> dict:
    """``measure`` in a process of its own with ``tree``'s ``service/`` first on its path, run under
    ``prefix`` (e.g. a profiler's command line) if given."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree / "service"), os.environ.get("PYTHONPATH", "")]),
    }
    labels = "labels" if with_labels else "none"
    out = subprocess.run(
        [*prefix, sys.executable, __file__, "--measure", str(n), labels, str(young)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    # The result is the last JSON line (a profiler writes its own lines to the same standard output).
    return json.loads(next(line for line in out.stdout.splitlines()[::-1] if line.startswith("{")))


def run_in(tree: Path, n: int, with_labels: bool, young: int = 0) -> float:
    return measure_in(tree, n, with_labels, young)["cpu_us_per_event"]


#: Events of the profiled run at least: at 1,000 samples/s, 20,000 events give a few hundred samples of the
#: loop, and a part's share then moves by a few points from run to run.
PROFILE_EVENTS = 100_000

#: The part of the label path a sample is in: the first rule (checked in order) one of whose marks is among
#: the sample's frames below ``Feeder._handle_label``; a sample outside it is the events' time.
LABEL_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "drift arms: learning (river's calls, the active arm's detector)",
        ("Arm._learn (", "ActiveArm._learn (", "PassiveArm._learn ("),
    ),
    ("drift arms: predicting the label's event (prequential accuracy)", ("Arm.predict_one (",)),
    ("drift arms: the rest (accuracy estimates, champion's review)", ("DriftWatch.learn (",)),
    ("stopping criteria's stability check", ("StoppingMonitor.check_stability (",)),
    ("pending store and closed requests", ("PendingStore.", "ClosedRequests.")),
    ("label metrics", ("Metrics.",)),
    ("parsing the label", ("parse_label (",)),
)
OTHER_LABEL = "the rest of handling a label"
EVENTS = "events (not handling a label)"


def label_profile(raw: str) -> dict[str, float]:
    """Share of the loop's samples (py-spy's raw output, under ``Service.run_once``) by part of the label
    path.

    >>> loop = "<module> (run.py:1);Service.run_once (service.py:1)"
    >>> label = loop + ";Feeder._handle_label (feeding.py:1);Trainer.on_label (learning.py:1)"
    >>> shares = label_profile("\\n".join([
    ...     label + ";DriftWatch.learn (w.py:1);PassiveArm._learn (arms.py:1);GLM.learn_one (r.py:1) 3",
    ...     label + ";DriftWatch.learn (w.py:1);Arm.predict_one (arms.py:1) 1",
    ...     label + ";parse_label (messages.py:1) 1",
    ...     loop + ";Feeder._handle_events (feeding.py:1) 5",
    ...     "<module> (run.py:1);make_inputs (s.py:1) 7",
    ... ]))
    >>> for part, share in shares.items():
    ...     if share:
    ...         print(f"{share:.1f} {part}")
    0.3 drift arms: learning (river's calls, the active arm's detector)
    0.1 drift arms: predicting the label's event (prequential accuracy)
    0.1 parsing the label
    0.5 events (not handling a label)
    """
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(f.startswith("Service.run_once (") for f in frames):
            continue  # start-up, producing the events, answering the requests
        label = next((i for i, f in enumerate(frames) if f.startswith("Feeder._handle_label (")), None)
        if label is None:
            counts[EVENTS] += int(count)
            continue
        below = frames[label + 1 :]
        part = next(
            (name for name, marks in LABEL_PARTS if any(f.startswith(marks) for f in below)), OTHER_LABEL
        )
        counts[part] += int(count)
    total = sum(counts.values()) or 1
    return {part: counts[part] / total for part in [*(n for n, _ in LABEL_PARTS), OTHER_LABEL, EVENTS]}


def profile_labels(n: int, young: int) -> list[str]:
    """One more run of the working tree with every request answered, under py-spy: the report's lines."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from versus_hand_built import PEERS_VENV, peers_python

    spy = peers_python(PEERS_VENV).parent / "py-spy"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "labels.spy"
        spying = [str(spy), "record", "--rate", "1000", "--format", "raw", "--output", str(raw), "--"]
        result = measure_in(ROOT, n, True, young, prefix=spying)
        shares = label_profile(raw.read_text())
    per_label = result["cpu_us_per_event"] * n / result["requests"]  # µs of the loop per label learned
    lines = [
        "",
        "## Where a label's time goes",
        "",
        f"py-spy (1,000 samples/s) on one more run of the working tree with every request answered, over "
        f"{n:,} events: {result['cpu_us_per_event']:.1f} µs CPU an event under the profiler, "
        f"{result['requests']:,} labels learned, {n / result['requests']:.1f} events a label. Each part: "
        "its share of the loop's on-CPU samples, and that share of the run's CPU in µs per label learned.",
        "",
        "| part | share of the loop's samples | µs per label |",
        "|---|---|---|",
    ]
    lines += [
        f"| {part} | {share:.0%} | {share * per_label:.1f} |"
        for part, share in shares.items()
        if part != EVENTS
    ]
    lines.append(f"| {EVENTS} | {shares[EVENTS]:.0%} | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rev", action="append", default=[], help="a git revision to compare (repeatable)")
    parser.add_argument(
        "--young",
        type=int,
        default=None,
        help="the garbage collector's young-generation threshold in every run (default: CPython's, 700; "
        "`activestream run` sets 10,000: app.YOUNG_GENERATION_THRESHOLD)",
    )
    parser.add_argument("--out", default="label_cost.md", help="file name in benchmarks/results/")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more run with labels under py-spy: where a label's time goes",
    )
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        young = int(args.measure[2])
        if young:
            gc.set_threshold(young, *gc.get_threshold()[1:])
        print(json.dumps(measure(int(args.measure[0]), args.measure[1] == "labels")))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from service_throughput import machine_info

    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, Path] = {}
        for rev in args.rev:
            path = Path(tmp) / rev
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(path), rev], check=True
            )
            trees[rev] = path
        trees["working tree"] = ROOT
        cpu: dict[tuple[str, bool], list[float]] = {}
        try:
            for repeat in range(args.repeats):
                for name, tree in trees.items():
                    for with_labels in (False, True):
                        value = run_in(tree, args.events, with_labels, args.young or 0)
                        cpu.setdefault((name, with_labels), []).append(value)
                        print(
                            f"repeat {repeat + 1}: {name}, labels {with_labels}: {value:.1f} µs/event",
                            flush=True,
                        )
        finally:
            for path in trees.values():
                if path != ROOT:
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False
                    )
    lines = [
        "# What learning the labels costs the loop",
        "",
        f"Generated by `python benchmarks/label_cost.py {' '.join(f'--rev {r}' for r in args.rev)}"
        f"{f' --young {args.young}' if args.young else ''}{' --profile' if args.profile else ''}` "
        f"({args.repeats} alternating repeats, medians with min–max; {args.events:,} events; protocol in the "
        f"module docstring). Machine: {info['cpu']}, {info['cores']} cores, {info['date']}, load at start "
        f"{info['load average at start (1, 5, 15 min)']}. Garbage collector's young generation: "
        f"{f'{args.young:,}' if args.young else 'CPython default (700)'}.",
        "",
        "| code | µs CPU/event, no labels | µs CPU/event, every request answered | µs per label learned | "
        "no-label rate kept with labels |",
        "|---|---|---|---|---|",
    ]
    for name in trees:
        none, labels = cpu[name, False], cpu[name, True]
        a, b = statistics.median(none), statistics.median(labels)
        spread = f"{a:.1f} ({min(none):.1f}–{max(none):.1f}) | {b:.1f} ({min(labels):.1f}–{max(labels):.1f})"
        lines.append(f"| {name} | {spread} | {(b - a) * 10:.0f} | {a / b:.0%} |")
    lines += ["", "µs per label: the difference times ten (about one event in ten is asked and answered)."]
    if args.profile:
        lines += profile_labels(max(args.events, PROFILE_EVENTS), args.young or 0)
    out = ROOT / "benchmarks" / "results" / args.out
    out.write_text("\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main()
