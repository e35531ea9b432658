"""Cost and scale: what one event costs each strategy, and how that cost grows.

In process, no broker (end-to-end broker throughput is ``benchmarks/service_throughput.py``). Every figure
is the median over ``repeats`` runs of the same deterministic data from the same warmed-up learner state.

- **Strategies.** Every measure with the default policy (ConfidenceSplit), and every policy with the
  default measure (margin), on the default scaled logistic regression, Hyperplane with 10 features. For
  each event: ``decide`` (predict_proba, score, threshold: the per-event cost) and ``learn_one`` (the
  cost of one labeled event), both timed with ``time.perf_counter_ns``; decision latency p50 and p99 from the
  per-event timings; RSS now (``/proc/self/statm``) and the process peak so far (``getrusage``).
  "Per event at 10%" is ``decide + 0.1 · learn``: the cost when one event in ten gets its label.
- **Features** 10 → 1,000 (Hyperplane): margin, density weighting, query by committee and expected model
  change, each with the default policy.
- **Classes** 2 → 50 (RandomRBF, 10 features), the default strategy on three learners: the default
  ``logreg`` at 2 classes only (it is binary and refuses a third class), a one-vs-rest logistic regression
  (scaler | OvR), and Gaussian naive Bayes.
- **Committee size** 2 → 20 (query by committee, vote entropy and KL consensus, Gaussian NB members; a
  committee of 1 is rejected by ``Committee``, so the margin strategy is the no-committee reference).
- **Pending store** 1k → 1M entries (``activestream.join.PendingStore``, 10-feature events): insert while
  filling, insert at capacity (each evicts the oldest), join by request id (in shuffled order), µs per
  operation, and bytes per entry (``tracemalloc``: the store's own structures, and the event's ids and
  feature dict it keeps alive).

The machine (CPU, cores, Python and river versions) and the 1-minute load average before and after each
section are written next to the figures: the machine is shared, so the load says how far to trust them.

    PYTHONPATH=service python benchmarks/cost_scale.py --quick   # under 2 minutes: cost_scale_quick.*
    PYTHONPATH=service python benchmarks/cost_scale.py           # 5-10 minutes: cost_scale.*

The full mode first waits (up to ``--max-wait`` seconds) for the 1-minute load average to drop below
``--load-below``, then runs anyway; the load is recorded either way.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import gc
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import river
from river import datasets, linear_model, multiclass, optim, preprocessing

from activestream.join import PendingStore
from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY, ActiveLearner, make_learner
from activestream.score.density import DensityWeighted
from activestream.types import ClassLabel, Features

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 42
BUDGET = 0.1
MEASURES = (
    "least_confidence",
    "margin",
    "entropy",
    "random",
    "qbc_vote_entropy",
    "qbc_kl",
    "density",
    "expected_model_change",
)
POLICIES = (
    "fixed",
    "variable_uncertainty",
    "randomized_variable_uncertainty",
    "split",
    "selective_sampling",
    "biqf",
    "confidence_split",
)
FEATURE_MEASURES = ("margin", "density", "qbc_vote_entropy", "expected_model_change")
CLASS_MODELS = ("logreg", "logreg_ovr", "gnb")
COMMITTEE_MEASURES = ("qbc_vote_entropy", "qbc_kl")

Data = list[tuple[Features, ClassLabel]]


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: ``quick`` for CI smoke, the default for the committed results."""

    repeats: int
    warmup: int
    events: int
    seconds: float  # cap on the measured time of one repeat (slow points measure fewer events)
    features: tuple[int, ...]
    classes: tuple[int, ...]
    committee: tuple[int, ...]
    pending: tuple[int, ...]
    pending_ops: int  # joins and at-capacity inserts timed per size (every entry is inserted)
    warm_seconds: float = 5.0  # cap on the deciding part of the warm-up (every warm-up event is learned)
    min_events: int = 10  # timed per repeat even past the time cap (the slowest points: p99 = max)


QUICK = Plan(
    repeats=3,
    warmup=200,
    events=1_000,
    seconds=0.15,
    features=(10, 100, 1_000),
    classes=(2, 10, 50),
    committee=(2, 5, 20),
    pending=(1_000, 10_000, 100_000),
    pending_ops=20_000,
    warm_seconds=1.0,
    min_events=5,
)
FULL = Plan(
    repeats=5,
    warmup=500,
    events=3_000,
    seconds=1.0,
    features=(10, 30, 100, 300, 1_000),
    classes=(2, 5, 10, 20, 50),
    committee=(2, 5, 10, 20),
    pending=(1_000, 10_000, 100_000, 1_000_000),
    pending_ops=100_000,
)


# --- the machine -------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model, cores, Python and river versions: what the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "river": river.__version__,
        "platform": platform.platform(),
    }


def load1() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def rss_mb() -> tuple[float, float]:
    """``(current, peak)`` resident set size of this process in MB (current from ``/proc/self/statm``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        current = float("nan")
    return current, peak


def wait_for_load(below: float, max_wait: float, poll: float = 15.0) -> float:
    """Wait until the 1-minute load average is below ``below`` or ``max_wait`` seconds passed; return it."""
    deadline = time.monotonic() + max_wait
    while (load := load1()) >= below and time.monotonic() < deadline:
        print(f"load {load:.2f} >= {below}: waiting", file=sys.stderr)
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    return load


# --- data and learners -------------------------------------------------------------------------------


def hyperplane(n_features: int, n: int, seed: int = SEED) -> Data:
    """``n`` events of a binary Hyperplane stream with ``n_features`` features."""
    return list(datasets.synth.Hyperplane(seed=seed, n_features=n_features).take(n))


def rbf(n_classes: int, n: int, seed: int = SEED) -> Data:
    """``n`` events of a RandomRBF stream with 10 features and ``n_classes`` classes."""
    stream = datasets.synth.RandomRBF(seed_model=seed, seed_sample=seed, n_classes=n_classes, n_features=10)
    return list(stream.take(n))


def ovr_logreg() -> Any:
    """Scaled one-vs-rest logistic regression: the multi-class counterpart of the default ``logreg``."""
    binary = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
    return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(binary)


def learner_for(
    measure: str = DEFAULT_MEASURE, policy: str = DEFAULT_POLICY, model: str = "logreg", **params: Any
) -> ActiveLearner:
    """A seeded learner; ``model`` is a registry name or ``"logreg_ovr"``."""
    classifier = ovr_logreg() if model == "logreg_ovr" else model
    return make_learner(classifier, measure=measure, policy=policy, budget=BUDGET, seed=SEED, **params)


# --- timing ------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Medians over repeats of one configuration's per-event costs (µs)."""

    events: int
    decide_us: float
    decide_p50_us: float
    decide_p99_us: float
    learn_us: float
    learn_p99_us: float
    cpu_us: float  # CPU time of decide + learn_one of one event
    rss_mb: float
    peak_rss_mb: float

    @property
    def per_event_us(self) -> float:
        """Cost of an event when a ``BUDGET`` fraction of events is labeled and learned."""
        return self.decide_us + BUDGET * self.learn_us


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of already sorted values (nearest rank).

    >>> quantile([1, 2, 3, 4], 0.5), quantile(list(range(100)), 0.99)
    (2, 98)
    """
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


def warm_up(learner: ActiveLearner, data: Data, seconds: float = 5.0) -> ActiveLearner:
    """Learn every event and decide them for up to ``seconds``: a trained model, a settled threshold.

    Density weighting's memory is then topped up with the last warm-up events, as deciding them would
    have done: its cost depends on a full memory.
    """
    started = time.perf_counter()
    for x, y in data:
        if time.perf_counter() - started < seconds:
            learner.decide(x)
        learner.learn_one(x, y)
    measure = learner.informativeness
    if isinstance(measure, DensityWeighted):
        for x, _ in data[-measure.memory :]:
            measure.remember(x)
    return learner


def _one_repeat(
    learner: ActiveLearner, data: Data, seconds: float, min_events: int
) -> tuple[list[int], list[int], float]:
    """Per-event wall ns of ``decide`` and of ``learn_one``, and CPU ns per event (both, this thread)."""
    decide_ns: list[int] = []
    learn_ns: list[int] = []
    clock = time.perf_counter_ns
    budget_ns = int(seconds * 1e9)
    spent = 0
    cpu_started = time.thread_time_ns()
    for x, y in data:
        t0 = clock()
        learner.decide(x)
        t1 = clock()
        learner.learn_one(x, y)
        t2 = clock()
        decide_ns.append(t1 - t0)
        learn_ns.append(t2 - t1)
        spent += t2 - t0
        if spent >= budget_ns and len(decide_ns) >= min_events:
            break
    # CPU time is not inflated by waiting for a core on a shared machine; wall time is.
    return decide_ns, learn_ns, (time.thread_time_ns() - cpu_started) / len(decide_ns)


def time_learner(make: Callable[[], ActiveLearner], warm: Data, data: Data, plan: Plan) -> Timing:
    """Warm a learner once, then time ``decide`` and ``learn_one`` on ``data`` from copies of it.

    Each repeat starts from a deep copy of the same warmed state, so repeats differ only by the machine.
    """
    warmed = warm_up(make(), warm, plan.warm_seconds)
    runs = []
    for _ in range(plan.repeats):
        learner = copy.deepcopy(warmed)
        gc.collect()
        runs.append(_one_repeat(learner, data, plan.seconds, plan.min_events))
    rss, peak = rss_mb()

    def med(values: Iterable[float]) -> float:
        return statistics.median(values) / 1_000  # ns -> µs

    decides = [sorted(d) for d, _, _ in runs]
    learns = [sorted(lrn) for _, lrn, _ in runs]
    return Timing(
        events=round(statistics.median(len(d) for d in decides)),
        decide_us=med(statistics.fmean(d) for d in decides),
        decide_p50_us=med(quantile(d, 0.5) for d in decides),
        decide_p99_us=med(quantile(d, 0.99) for d in decides),
        learn_us=med(statistics.fmean(lrn) for lrn in learns),
        learn_p99_us=med(quantile(lrn, 0.99) for lrn in learns),
        cpu_us=med(cpu for _, _, cpu in runs),
        rss_mb=rss,
        peak_rss_mb=peak,
    )


# --- sections ----------------------------------------------------------------------------------------


@dataclass
class Section:
    """Rows of one section, with the load average around it."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0
    seconds: float = 0.0


def _timing_row(section: str, strategy: str, model: str, x: int | None, timing: Timing) -> dict[str, Any]:
    row: dict[str, Any] = {"section": section, "strategy": strategy, "model": model, "x": x}
    row.update({k: v for k, v in vars(timing).items()})
    row["per_event_us"] = timing.per_event_us
    return row


def _progress(section: str, row: dict[str, Any]) -> None:
    keys = ("strategy", "model", "x", "decide_us", "learn_us", "insert_us", "join_us")
    shown = {k: (round(row[k], 1) if isinstance(row[k], float) else row[k]) for k in keys if k in row}
    print(f"[{section}] {shown}", file=sys.stderr)


def run_strategies(plan: Plan) -> list[dict[str, Any]]:
    """Every measure with the default policy, then every other policy with the default measure."""
    data = hyperplane(10, plan.warmup + plan.events)
    warm, timed = data[: plan.warmup], data[plan.warmup :]
    configs = [(m, DEFAULT_POLICY) for m in MEASURES] + [
        (DEFAULT_MEASURE, p) for p in POLICIES if p != DEFAULT_POLICY
    ]
    rows = []
    for measure, policy in configs:
        timing = time_learner(lambda m=measure, p=policy: learner_for(m, p), warm, timed, plan)
        rows.append(_timing_row("strategies", f"{measure}/{policy}", "logreg", 10, timing))
        _progress("strategies", rows[-1])
    return rows


def run_features(plan: Plan) -> list[dict[str, Any]]:
    """Cost against the number of features (Hyperplane)."""
    rows = []
    for n_features in plan.features:
        data = hyperplane(n_features, plan.warmup + plan.events)
        warm, timed = data[: plan.warmup], data[plan.warmup :]
        for measure in FEATURE_MEASURES:
            timing = time_learner(lambda m=measure: learner_for(m), warm, timed, plan)
            rows.append(_timing_row("features", f"{measure}/{DEFAULT_POLICY}", "logreg", n_features, timing))
            _progress("features", rows[-1])
    return rows


def run_classes(plan: Plan) -> list[dict[str, Any]]:
    """Cost against the number of classes (RandomRBF, 10 features) for three learners."""
    rows = []
    for n_classes in plan.classes:
        data = rbf(n_classes, plan.warmup + plan.events)
        warm, timed = data[: plan.warmup], data[plan.warmup :]
        for model in CLASS_MODELS:
            if model == "logreg" and n_classes > 2:
                continue  # binary: it refuses the third class (activestream.models.BinaryLabelError)
            timing = time_learner(lambda m=model: learner_for(model=m), warm, timed, plan)
            strategy = f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}"
            rows.append(_timing_row("classes", strategy, model, n_classes, timing))
            _progress("classes", rows[-1])
    return rows


def run_committee(plan: Plan) -> list[dict[str, Any]]:
    """Query-by-committee cost against committee size (Hyperplane, 10 features), margin as reference."""
    data = hyperplane(10, plan.warmup + plan.events)
    warm, timed = data[: plan.warmup], data[plan.warmup :]
    rows = []
    reference = time_learner(learner_for, warm, timed, plan)
    rows.append(_timing_row("committee", f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}", "logreg", 1, reference))
    _progress("committee", rows[-1])
    for size in plan.committee:
        for measure in COMMITTEE_MEASURES:
            timing = time_learner(lambda m=measure, s=size: learner_for(m, size=s), warm, timed, plan)
            rows.append(_timing_row("committee", f"{measure}/{DEFAULT_POLICY}", "logreg", size, timing))
            _progress("committee", rows[-1])
    return rows


def pending_inputs(n: int, start: int = 0, seed: int = SEED) -> list[tuple[str, str, Features]]:
    """``n`` (request id, event id, 10-feature dict) triples from number ``start``, as the service keeps them.

    >>> [(r, e, len(x)) for r, e, x in pending_inputs(1, start=7)]
    [('req-000000000007', 'evt-000000000007', 10)]
    """
    rng = random.Random(seed + start)
    return [
        (f"req-{i:012d}", f"evt-{i:012d}", {str(k): rng.random() for k in range(10)})
        for i in range(start, start + n)
    ]


def _fill(store: PendingStore, inputs: Sequence[tuple[str, str, Features]], start_ms: int = 0) -> None:
    for i, (request_id, event_id, features) in enumerate(inputs):
        store.add(request_id, event_id, features, start_ms + i, "informative", True)


def pending_bytes(size: int) -> tuple[float, float]:
    """``(store, payload)`` bytes per entry of a full store, by ``tracemalloc``.

    ``store``: the entry object and the store's indexes; ``payload``: the ids and feature dict it keeps.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        inputs = pending_inputs(size)
        with_inputs = tracemalloc.get_traced_memory()[0]
        store = PendingStore(max_size=size, ttl_ms=10**12)
        _fill(store, inputs)
        filled = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # The list holding the inputs (8 bytes a slot, 56-byte tuples) is benchmark scaffolding, not payload.
    scaffolding = sys.getsizeof(inputs) + sum(sys.getsizeof(t) for t in inputs)
    del store, inputs
    return (filled - with_inputs) / size, (with_inputs - before - scaffolding) / size


def _clocks() -> tuple[int, int]:
    """Wall and this thread's CPU time, in ns."""
    return time.perf_counter_ns(), time.thread_time_ns()


def _per_op(started: tuple[int, int], ended: tuple[int, int], ops: int) -> tuple[float, float]:
    """``(wall, cpu)`` µs per operation between two ``_clocks()`` readings."""
    return (ended[0] - started[0]) / ops / 1_000, (ended[1] - started[1]) / ops / 1_000


def _fill_without_gc(size: int, inputs: Sequence[tuple[str, str, Features]]) -> float:
    """CPU µs per insert while filling with the cyclic garbage collector off: what the collector costs.

    The collector's full passes walk every tracked object (entries, feature dicts), so its share of an
    insert grows with what the process holds.
    """
    gc.collect()
    gc.disable()
    try:
        store = PendingStore(max_size=size, ttl_ms=10**12)
        started = _clocks()
        _fill(store, inputs)
        return _per_op(started, _clocks(), size)[1]
    finally:
        gc.enable()


def time_pending(size: int, ops: int, repeats: int) -> dict[str, float]:
    """Wall and CPU µs per insert (filling, then at capacity) and per join, store of ``size`` entries.

    Also the CPU of the filling insert with the garbage collector off (``insert_no_gc_cpu_us``).
    """
    inputs = pending_inputs(size)
    extra = pending_inputs(min(ops, size), start=size)
    order = list(range(size))
    random.Random(SEED).shuffle(order)
    join_ids = [inputs[i][0] for i in order[: min(ops, size)]]
    runs: dict[str, list[float]] = {}

    def record(key: str, wall_cpu: tuple[float, float]) -> None:
        runs.setdefault(f"{key}_us", []).append(wall_cpu[0])
        runs.setdefault(f"{key}_cpu_us", []).append(wall_cpu[1])

    for _ in range(repeats):
        gc.collect()
        store = PendingStore(max_size=size, ttl_ms=10**12)
        t0 = _clocks()
        _fill(store, inputs)
        t1 = _clocks()
        for request_id in join_ids:
            store.join(size, request_id=request_id)
        t2 = _clocks()
        _fill(store, inputs[: len(join_ids)], start_ms=size)  # refill what was joined, back to capacity
        t3 = _clocks()
        _fill(store, extra, start_ms=2 * size)  # each insert evicts the oldest
        t4 = _clocks()
        record("insert", _per_op(t0, t1, size))
        record("join", _per_op(t1, t2, len(join_ids)))
        record("insert_full", _per_op(t3, t4, len(extra)))
        del store
        runs.setdefault("insert_no_gc_cpu_us", []).append(_fill_without_gc(size, inputs))
    return {key: statistics.median(values) for key, values in runs.items()}


def run_pending(plan: Plan) -> list[dict[str, Any]]:
    """The pending store from 1k to 1M entries."""
    rows = []
    for size in plan.pending:
        row: dict[str, Any] = {"section": "pending", "strategy": "PendingStore", "model": "", "x": size}
        # At most 3 repeats: filling a million entries takes seconds, and its spread is small.
        row.update(time_pending(size, plan.pending_ops, min(plan.repeats, 3)))
        row["store_bytes_per_entry"], row["payload_bytes_per_entry"] = pending_bytes(size)
        row["rss_mb"], row["peak_rss_mb"] = rss_mb()
        rows.append(row)
        _progress("pending", row)
    return rows


SECTIONS: dict[str, Callable[[Plan], list[dict[str, Any]]]] = {
    "strategies": run_strategies,
    "features": run_features,
    "classes": run_classes,
    "committee": run_committee,
    "pending": run_pending,
}


def run_sections(plan: Plan, names: Iterable[str] = SECTIONS) -> list[Section]:
    """Run the named sections in order, recording the load average around each."""
    sections = []
    for name in names:
        section = Section(name, load_before=load1())
        started = time.perf_counter()
        section.rows = SECTIONS[name](plan)
        section.seconds = time.perf_counter() - started
        section.load_after = load1()
        sections.append(section)
    return sections


# --- report ------------------------------------------------------------------------------------------

COLUMNS = (
    "section",
    "strategy",
    "model",
    "x",
    "events",
    "decide_us",
    "decide_p50_us",
    "decide_p99_us",
    "learn_us",
    "learn_p99_us",
    "per_event_us",
    "cpu_us",
    "insert_us",
    "insert_cpu_us",
    "insert_no_gc_cpu_us",
    "insert_full_us",
    "insert_full_cpu_us",
    "join_us",
    "join_cpu_us",
    "store_bytes_per_entry",
    "payload_bytes_per_entry",
    "rss_mb",
    "peak_rss_mb",
    "load_before",
    "load_after",
)


def write_csv(sections: Sequence[Section], path: Path) -> None:
    """One row per measured point; columns that do not apply to a section are empty."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for section in sections:
            for row in section.rows:
                full = {**row, "load_before": section.load_before, "load_after": section.load_after}
                writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in full.items()})


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _rows(sections: Sequence[Section], name: str) -> list[dict[str, Any]]:
    return next((s.rows for s in sections if s.name == name), [])


def _ratio(rows: list[dict[str, Any]], key: str, **match: Any) -> tuple[float, int, int] | None:
    """``(last / first, first x, last x)`` of ``key`` over the rows matching ``match``, by ``x``."""
    chosen = sorted((r for r in rows if all(r.get(k) == v for k, v in match.items())), key=lambda r: r["x"])
    if len(chosen) < 2 or not chosen[0][key]:
        return None
    return chosen[-1][key] / chosen[0][key], chosen[0]["x"], chosen[-1]["x"]


def _growth(rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """``("10 → 1,000", "decide 15.0 → 388.0 µs (×25.9), ...")`` from the first to the last ``x``."""
    if len({r["x"] for r in rows}) < 2:
        return None
    first, last = min(rows, key=lambda r: r["x"]), max(rows, key=lambda r: r["x"])
    parts = [
        f"{what} {_f(first[key])} → {_f(last[key])} µs (×{last[key] / first[key]:.1f})"
        for key, what in (("decide_us", "decide"), ("learn_us", "learn"))
    ]
    parts.append(f"CPU per event ×{last['cpu_us'] / first['cpu_us']:.1f}")
    return f"{first['x']:,} → {last['x']:,}", ", ".join(parts)


def strategy_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| strategy | decide µs | learn µs | per event at 10% µs | decide p50 µs | decide p99 µs | "
        "CPU µs decide + learn | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = (
            f"**{r['strategy']}** (default)"
            if r["strategy"] == f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}"
            else r["strategy"]
        )
        lines.append(
            f"| {name} | {_f(r['decide_us'])} | {_f(r['learn_us'])} | {_f(r['per_event_us'])} | "
            f"{_f(r['decide_p50_us'])} | {_f(r['decide_p99_us'])} | {_f(r['cpu_us'])} | "
            f"{_f(r['rss_mb'], 0)} |"
        )
    return lines


def sweep_table(rows: list[dict[str, Any]], label: str, series: str) -> list[str]:
    """Decide and learn µs of each series (``strategy`` or ``model``) at each ``x``."""
    xs = sorted({r["x"] for r in rows})
    names = list(dict.fromkeys(r[series] for r in rows))
    lines = [
        f"| {label} | " + " | ".join(f"{x:,}" for x in xs) + " | ratio last/first |",
        "|---" * (len(xs) + 2) + "|",
    ]
    for name in names:
        for key, what in (
            ("decide_us", "decide"),
            ("learn_us", "learn"),
            ("decide_p99_us", "decide p99"),
            ("cpu_us", "CPU decide + learn"),
        ):
            cells = {r["x"]: r[key] for r in rows if r[series] == name}
            ratio = _ratio(rows, key, **{series: name})
            lines.append(
                f"| {name} {what} | "
                + " | ".join(_f(cells[x]) if x in cells else "" for x in xs)
                + f" | {'' if ratio is None else f'{ratio[0]:.1f}×'} |"
            )
    return lines


def pending_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| entries | insert µs wall / CPU | insert CPU µs, GC off | insert at capacity (evicts) wall / CPU | "
        "join wall / CPU | store B/entry | payload B/entry | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def pair(key: str) -> str:
            return f"{_f(r[f'{key}_us'], 2)} / {_f(r[f'{key}_cpu_us'], 2)}"  # noqa: B023 - used at once

        lines.append(
            f"| {r['x']:,} | {pair('insert')} | {_f(r['insert_no_gc_cpu_us'], 2)} | {pair('insert_full')} | "
            f"{pair('join')} | {_f(r['store_bytes_per_entry'], 0)} | {_f(r['payload_bytes_per_entry'], 0)} | "
            f"{_f(r['rss_mb'], 0)} |"
        )
    return lines


def headline(sections: Sequence[Section]) -> list[str]:
    """The ratios the README quotes."""
    lines = []
    default = f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}"
    for r in _rows(sections, "strategies"):
        if r["strategy"] == default:
            lines.append(
                f"- Default {default} on logreg, 10 features: decide {_f(r['decide_us'])} µs (p50 "
                f"{_f(r['decide_p50_us'])}, p99 {_f(r['decide_p99_us'])}), learn {_f(r['learn_us'])} µs, "
                f"{_f(r['per_event_us'])} µs per event at a 10% budget."
            )
    for name, series, names, unit in (
        ("features", "strategy", [f"{m}/{DEFAULT_POLICY}" for m in FEATURE_MEASURES], "features"),
        ("classes", "model", list(CLASS_MODELS), "classes"),
        ("committee", "strategy", [f"{m}/{DEFAULT_POLICY}" for m in COMMITTEE_MEASURES], "members"),
    ):
        rows = [r for r in _rows(sections, name) if name != "committee" or r["x"] > 1]
        for label in names:
            if growth := _growth([r for r in rows if r[series] == label]):
                lines.append(f"- {unit.capitalize()} {growth[0]}, {label}: {growth[1]}.")
    pending = sorted(_rows(sections, "pending"), key=lambda r: r["x"])
    if len(pending) >= 2:
        first, last = pending[0], pending[-1]
        own = last["store_bytes_per_entry"]

        def span(key: str) -> str:
            return f"{_f(first[key], 2)} → {_f(last[key], 2)} µs"

        lines.append(
            f"- Pending store {first['x']:,} → {last['x']:,} entries, CPU per operation: insert "
            f"{span('insert_cpu_us')} (garbage collector off: {span('insert_no_gc_cpu_us')}), insert at "
            f"capacity {span('insert_full_cpu_us')}, join {span('join_cpu_us')}; "
            f"{_f(own + last['payload_bytes_per_entry'], 0)} bytes per entry at {last['x']:,} "
            f"({_f(own, 0)} of them the store's own)."
        )
    return lines


def _label_x(ax: Any, xs: Sequence[int]) -> None:
    """Tick the log x axis at the measured points only, as plain numbers."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(xs), [f"{x:,}" for x in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot(sections: Sequence[Section], out: Path) -> None:
    """Four panels (features, classes, committee, pending store), log-x, µs on log-y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    panels = (
        ("features", "strategy", "features", axes[0][0]),
        ("classes", "model", "classes", axes[0][1]),
        ("committee", "strategy", "committee size (1 = margin, no committee)", axes[1][0]),
    )
    for name, series, xlabel, ax in panels:
        rows = _rows(sections, name)
        for label in dict.fromkeys(r[series] for r in rows):
            chosen = sorted((r for r in rows if r[series] == label), key=lambda r: r["x"])
            xs = [r["x"] for r in chosen]
            (line,) = ax.plot(xs, [r["decide_us"] for r in chosen], marker="o", label=f"{label} decide")
            ax.plot(
                xs,
                [r["learn_us"] for r in chosen],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{label} learn",
            )
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="µs per event", title=f"cost vs {name}")
        _label_x(ax, sorted({r["x"] for r in rows}))
        if rows:
            ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    ax = axes[1][1]
    rows = sorted(_rows(sections, "pending"), key=lambda r: r["x"])
    xs = [r["x"] for r in rows]
    for key, label in (
        ("insert_cpu_us", "insert (filling)"),
        ("insert_no_gc_cpu_us", "insert (filling, GC off)"),
        ("insert_full_cpu_us", "insert (at capacity)"),
        ("join_cpu_us", "join"),
    ):
        ax.plot(xs, [r[key] for r in rows], marker="o", label=label)
    ax.set(xscale="log", xlabel="pending entries", ylabel="CPU µs per operation", title="pending store")
    _label_x(ax, xs)
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    twin.plot(
        xs,
        [r["store_bytes_per_entry"] + r["payload_bytes_per_entry"] for r in rows],
        color="grey",
        linestyle=":",
        marker="s",
        label="bytes per entry",
    )
    twin.set_ylabel("bytes per entry (grey)")
    twin.set_ylim(bottom=0)
    if rows:
        ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def plot_strategies(rows: list[dict[str, Any]], out: Path) -> None:
    """Decide and learn µs per strategy, stacked bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    names = [r["strategy"] for r in rows]
    decide = [r["decide_us"] for r in rows]
    ax.barh(names, decide, label="decide (every event)")
    ax.barh(names, [BUDGET * r["learn_us"] for r in rows], left=decide, label="learn × 10% (labeled events)")
    ax.set(
        xscale="log", xlabel="µs per event (log)", title="cost per event at a 10% budget, logreg, 10 features"
    )
    ax.set_xlim(left=1.0)  # bars start at 1 µs, not at the smallest bar
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def write_report(
    sections: Sequence[Section], out: Path, quick: bool, plan: Plan, waited_load: float | None
) -> Path:
    """Markdown, CSV and PNGs of one run into ``out``; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "cost_scale_quick" if quick else "cost_scale"
    write_csv(sections, out / f"{stem}.csv")
    plot(sections, out / f"{stem}.png")
    plot_strategies(_rows(sections, "strategies"), out / f"{stem}_strategies.png")
    machine = machine_info()
    total = sum(s.seconds for s in sections)
    lines = [
        f"# Cost and scale{' (quick)' if quick else ''}",
        "",
        f"Generated by `benchmarks/cost_scale.py{' --quick' if quick else ''}` on "
        f"{datetime.date.today().isoformat()} in {total:.0f} s; see its docstring for the protocol. "
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared with other jobs), "
        f"Python {machine['python']}, river {machine['river']}, {machine['platform']}.",
        "",
        f"Medians of {plan.repeats} repeats; each repeat times up to {plan.events:,} events (stopping after "
        f"{plan.seconds:g} s of measured time, so the slowest points time fewer) after {plan.warmup} warm-up "
        f"events; seed {SEED}, budget {BUDGET:.0%}. µs are wall clock on a shared machine: compare within a "
        "table, and read the load average next to each section.",
        "",
    ]
    if waited_load is not None:
        lines += [
            f"1-minute load average when the run started (after waiting for it to drop): {waited_load:.2f}.",
            "",
        ]
    lines += ["| section | seconds | load before | load after |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {s.seconds:.0f} | {s.load_before:.2f} | {s.load_after:.2f} |" for s in sections]
    lines += ["", "## Headline", "", *headline(sections), ""]
    if rows := _rows(sections, "strategies"):
        lines += [
            "## Strategies",
            "",
            "Logistic regression (the default `logreg`), Hyperplane with 10 features. *decide* is "
            "predict_proba, score and threshold for one event; *learn* is `learn_one` of one labeled "
            "event (the committee's members learn too); *per event at 10%* = decide + 0.1 × learn. RSS is "
            "the process's now.",
            "",
            *strategy_table(rows),
            "",
            f"![cost per strategy]({stem}_strategies.png)",
            "",
        ]
    sweeps = (
        ("features", "features", "strategy", f"Hyperplane, logreg; each measure with {DEFAULT_POLICY}."),
        (
            "classes",
            "classes",
            "model",
            f"RandomRBF with 10 features, {DEFAULT_MEASURE}/{DEFAULT_POLICY}. `logreg` is river's binary "
            "`LogisticRegression`, measured at 2 classes only (the service refuses a third class's label "
            "for it); "
            "`logreg_ovr` is `StandardScaler | OneVsRestClassifier(LogisticRegression)`; `gnb` Gaussian "
            "naive Bayes.",
        ),
        (
            "committee",
            "members",
            "strategy",
            "Hyperplane with 10 features, served model logreg, committee of Gaussian NB by online bagging. "
            "`Committee` needs at least 2 members; the x = 1 row is "
            f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}, the no-committee reference.",
        ),
    )
    for name, label, series, note in sweeps:
        if rows := _rows(sections, name):
            lines += [f"## Cost against {name}", "", note, "", *sweep_table(rows, label, series), ""]
    if rows := _rows(sections, "pending"):
        lines += [
            "## Pending store",
            "",
            "`PendingStore` holding 10-feature events: µs per insert while filling to capacity, per "
            "insert at capacity (each evicts the oldest), and per join by request id in shuffled order "
            f"(up to {plan.pending_ops:,} of each, timed); bytes per entry by `tracemalloc`: the store's own "
            "(entry object, indexes) and the payload it keeps alive (two ids and a 10-float feature dict). "
            "The store also remembers up to `max_size` closed request ids (not counted here).",
            "",
            *pending_table(rows),
            "",
        ]
    lines += [f"![cost against features, classes, committee size and pending entries]({stem}.png)", ""]
    path = out / f"{stem}.md"
    path.write_text("\n".join(lines))
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke: fewer points, 3 repeats, under 2 minutes"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the md, csv and png")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument(
        "--load-below", type=float, default=2.5, help="wait for this 1-minute load (full mode)"
    )
    parser.add_argument(
        "--max-wait", type=float, default=600.0, help="seconds to wait for it (0: do not wait)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    waited = None if args.quick or args.max_wait <= 0 else wait_for_load(args.load_below, args.max_wait)
    sections = run_sections(plan, args.sections)
    path = write_report(sections, args.out, args.quick, plan, waited)
    print("\n".join(headline(sections)))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
