"""Label efficiency: the accuracy a labeling budget buys, activestream against random sampling and peers.

Protocol (Žliobaitė et al. 2014): prequential — every event first tests the model, then the strategy
decides whether to ask for its label, and only asked labels are learned (``--delay`` events later).
Everyone drives the same base learner (``--model``, default ``logreg``: river's logistic regression behind
a standard scaler), fresh for every run.

Methods:

- activestream's default (whatever ``make_learner(model, budget=B, seed=s)`` gives) and a few named
  measure/policy configurations (``--configs`` adds more: ``measure[k=v,..]/policy[k=v,..]``);
- random sampling at the same budget (``activestream.evaluate.random_sampling``), the baseline;
- river's ``active.EntropySampler``: it has no budget, so its ``discount_factor`` is set by bisection
  (``CALIBRATION_STEPS`` runs) to ask for about ``B`` of the events of the very stream it is then scored
  on — an oracle calibration that favours it (a prefix is no good: the fraction it asks falls as the
  model grows confident); the labels it actually used are reported;
- scikit-activeml's stream strategies ``VariableUncertainty``, ``Split``, ``RandomVariableUncertainty``
  and ``StreamProbabilisticAL``, unchanged, asked one event at a time about the same river model through
  an adapter (``RiverClassifierForSkactiveml``) that shows it as the fitted ``SkactivemlClassifier``
  their ``query`` reads (``predict_proba`` in a fixed class order); their budget managers are updated
  with ``update(candidates, queried_indices)`` after each event as their documentation prescribes.
  ``StreamProbabilisticAL`` also needs label frequencies: we use its documented ``metric="rbf"`` route,
  where it fits a ``ParzenWindowClassifier`` (bandwidth ``gamma="mean"``) on ``X``/``y`` — the last
  ``PAL_WINDOW`` events, unlabeled ones marked missing, as in scikit-activeml's stream examples — and
  multiplies the kernel frequency by the river model's probabilities. Its candidates and window are
  standardised with running means/variances of the unlabeled stream (the kernel needs comparable
  scales; the other strategies do not read the features).

Streams: sea_abrupt, agrawal_gradual, hyperplane, rbf_drift (synthetic, n = 50,000 in full mode, 5,000
with ``--quick``) and elec (45,312 events in full mode). Budgets 5% and 10% (``--budgets``). Full mode
runs 3 seeds (synthetic streams and learners both take the seed; elec only the learners), quick mode 1.

Outputs in ``benchmarks/results/`` (``--out``): ``label_efficiency.md`` (tables: accuracy % and labels
used %, best in bold), ``label_efficiency.csv`` (means and standard deviations over seeds, µs per event)
and ``label_efficiency_<stream>_<budget>.png`` (window accuracy of the default, random and the best peer).

Run from the repository root (with the package installed, or ``PYTHONPATH=service``)::

    python benchmarks/label_efficiency.py --quick          # a few minutes
    python benchmarks/label_efficiency.py --jobs 2         # full
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import math
import multiprocessing
import os
import pickle
import platform
import re
import statistics
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from activestream.datasets import make_stream
from activestream.decide import make_policy
from activestream.evaluate import PrequentialResult, prequential, random_sampling
from activestream.learner import ActiveLearner, make_learner
from activestream.models import make_model
from activestream.score import make_measure

STREAMS = ("sea_abrupt", "agrawal_gradual", "hyperplane", "rbf_drift", "elec")
SYNTHETIC_N = 50_000
QUICK_N = 5_000
ELEC_N = 45_312
#: Bisection steps on log2(discount_factor) to calibrate river's EntropySampler to the budget.
CALIBRATION_STEPS = 8
#: Events (labeled or not) in StreamProbabilisticAL's frequency window.
PAL_WINDOW = 500
#: A method using more than this many times the budget is marked over budget and cannot be best.
OVER_BUDGET_TOLERANCE = 1.05
RESULTS = Path(__file__).resolve().parent / "results"


def fix_string_hashes(seed: str = "0") -> None:
    """Run this script again with ``PYTHONHASHSEED`` set, unless it is (call first, from ``__main__`` only).

    River's Hoeffding trees sum class statistics in an order that follows Python's string hashes, which
    differ from process to process: with string class labels (ImageSegments) two runs of the same seed
    differed by up to 13 of 2,310 events (``results/field_seeds.md``). Fixed, the tables repeat; the
    worker processes inherit it.
    """
    if os.environ.get("PYTHONHASHSEED") is None:
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": seed})


#: Named activestream configurations (``measure[params]/policy[params]``) and whether quick mode runs them
#: (the committee and density measures cost 25-100x more per event than the others).
NAMED_CONFIGS: tuple[tuple[str, bool], ...] = (
    ("margin/split", True),
    ("entropy/randomized_variable_uncertainty", True),
    ("entropy/variable_uncertainty", True),
    ("least_confidence/selective_sampling", True),
    ("entropy/biqf", True),
    ("expected_model_change/variable_uncertainty", True),
    ("qbc_vote_entropy/randomized_variable_uncertainty", False),
    ("density[inner=least_confidence,memory=50]/selective_sampling", False),
)
#: Measures that cost over 100 µs per event (committees of models, a memory of recent events).
SLOW_MEASURES = frozenset({"qbc_vote_entropy", "qbc_kl", "density"})


# ---------------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """What every method builder receives for one run."""

    model: str
    budget: float
    seed: int
    classes: tuple[Any, ...]
    features: tuple[str, ...]
    data: Sequence[tuple[dict[str, Any], Any]]
    delay: int


@dataclass(frozen=True)
class Method:
    """A row of the tables."""

    key: str
    family: str  # "activestream", "baseline", "river" or "skactiveml"
    build: Callable[[Setting], tuple[Any, dict[str, Any]]]  # -> (learner, info for the CSV)
    label: str = ""
    #: Over 100 µs per event: one seed in full mode (still on the whole stream), in a task of its own.
    slow: bool = False

    @property
    def peer(self) -> bool:
        return self.family in ("river", "skactiveml")


_CONFIG = re.compile(r"^(?P<m>[a-z_]+)(?:\[(?P<mp>[^\]]*)\])?/(?P<p>[a-z_]+)(?:\[(?P<pp>[^\]]*)\])?$")


def _literal(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {k.strip(): _literal(v.strip()) for k, v in pairs}


def parse_config(spec: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """``"measure[k=v,..]/policy[k=v,..]"`` → (measure, measure params, policy, policy params).

    >>> parse_config("density[inner=margin,memory=50]/split[random_fraction=0.5]")
    ('density', {'inner': 'margin', 'memory': 50}, 'split', {'random_fraction': 0.5})
    """
    match = _CONFIG.match(spec.replace(" ", ""))
    if not match:
        raise ValueError(f"bad configuration {spec!r}: expected measure[k=v,...]/policy[k=v,...]")
    return match["m"], _params(match["mp"]), match["p"], _params(match["pp"])


def activestream_config(spec: str) -> Method:
    measure, measure_params, policy, policy_params = parse_config(spec)

    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        learner = ActiveLearner(
            make_model(s.model, s.seed),
            measure=make_measure(measure, seed=s.seed, **measure_params),
            policy=make_policy(policy, s.budget, seed=s.seed, **policy_params),
            budget=s.budget,
            seed=s.seed,
        )
        return learner, {}

    return Method(spec, "activestream", build, slow=measure in SLOW_MEASURES)


def _default(s: Setting) -> tuple[Any, dict[str, Any]]:
    learner = make_learner(s.model, budget=s.budget, seed=s.seed)
    return learner, {"strategy": learner.strategy}


def _random(s: Setting) -> tuple[Any, dict[str, Any]]:
    return random_sampling(make_model(s.model, s.seed), s.budget, seed=s.seed), {}


# --- river's EntropySampler ------------------------------------------------------------------------


def _entropy_sampler(s: Setting) -> tuple[Any, dict[str, Any]]:
    from river import active

    def fraction(discount: float) -> float:
        sampler = active.EntropySampler(make_model(s.model, s.seed), discount_factor=discount, seed=s.seed)
        return prequential(sampler, s.data, delay=s.delay).labels_fraction

    # The fraction asked falls as the discount factor grows: bisect log2(discount) in [-4, 10].
    low, high = -4.0, 10.0
    best = (math.inf, 1.0, 0.0)  # (distance to the budget, discount factor, fraction asked)
    for _ in range(CALIBRATION_STEPS):
        mid = (low + high) / 2
        got = fraction(2.0**mid)
        best = min(best, (abs(got - s.budget), 2.0**mid, got))
        if got > s.budget:
            low = mid
        else:
            high = mid
    _, discount, _ = best
    sampler = active.EntropySampler(make_model(s.model, s.seed), discount_factor=discount, seed=s.seed)
    return sampler, {"discount_factor": round(discount, 3)}


# --- scikit-activeml -------------------------------------------------------------------------------


@functools.cache
def _skactiveml_adapter():
    """Import scikit-activeml lazily (it is an optional, benchmark-only dependency)."""
    from skactiveml.base import SkactivemlClassifier

    class RiverClassifierForSkactiveml(SkactivemlClassifier):
        """Shows a river classifier to a scikit-activeml stream strategy as a fitted classifier.

        The strategies only call ``predict_proba(candidates)`` (``fit_clf=False``); the river model keeps
        learning one example at a time outside. Labels are the indices ``0..C-1`` of ``classes`` and
        ``predict_proba`` answers for the event being decided (``current``), whose raw features the river
        model reads: the candidate rows are only for the strategies that read features.
        """

        def __init__(self, model=None, classes=None, missing_label=-1):
            super().__init__(classes=classes, missing_label=missing_label)
            self.model = model
            self.classes_ = np.asarray(classes)
            self.current: np.ndarray | None = None

        def fit(self, X, y, sample_weight=None):
            raise NotImplementedError("the river model learns one example at a time, outside scikit-activeml")

        def predict_proba(self, X, **kwargs):
            if len(X) != 1 or self.current is None:
                raise ValueError("the adapter answers for the one event being decided")
            return self.current[None, :]

    return RiverClassifierForSkactiveml


class SkactivemlStreamLearner:
    """A river-style active learner (``predict_one → (y_pred, ask)``, ``learn_one``) around a
    scikit-activeml stream query strategy and a river classifier."""

    def __init__(self, model, strategy, classes, features, window: int | None = None):
        self.model = model
        self.strategy = strategy
        self.classes = list(classes)
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.features = list(features)
        self.clf = _skactiveml_adapter()(model, classes=list(range(len(self.classes))))
        # Running mean/variance of the unlabeled stream (Welford), to standardise the candidates.
        self._n, self._mean, self._m2 = 0, np.zeros(len(self.features)), np.zeros(len(self.features))
        self.window = window
        if window:
            self._X = np.zeros((window, len(self.features)))
            self._y = np.full(window, -1)
            self._filled = 0
            #: Window positions of the events asked whose labels have not arrived yet, in ask order.
            self._pending: deque[int] = deque()

    def _candidate(self, x) -> tuple[np.ndarray, np.ndarray]:
        raw = np.fromiter((float(x[f]) for f in self.features), float, len(self.features))
        self._n += 1
        delta = raw - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (raw - self._mean)
        return raw, self._standardise(raw[None, :])

    def _standardise(self, rows: np.ndarray) -> np.ndarray:
        std = np.sqrt(self._m2 / self._n) if self._n > 1 else np.ones_like(self._mean)
        return (rows - self._mean) / np.where(std > 0, std, 1.0)

    def predict_one(self, x, **kwargs):
        proba = self.model.predict_proba_one(x)
        y_pred = max(proba, key=proba.__getitem__) if proba else None
        row = np.array([max(float(proba.get(c, 0.0)), 0.0) for c in self.classes])
        total = row.sum()
        self.clf.current = row / total if total > 0 else np.full(len(self.classes), 1 / len(self.classes))
        raw, candidate = self._candidate(x)
        if self.window:
            slot = self._filled % self.window
            self._X[slot], self._y[slot] = raw, -1
            self._filled += 1
            size = min(self._filled, self.window)
            X, y = self._standardise(self._X[:size]), self._y[:size]
            queried, utilities = self.strategy.query(candidate, clf=self.clf, X=X, y=y, return_utilities=True)
            self.strategy.update(candidate, queried, budget_manager_param_dict={"utilities": utilities})
            if len(queried):
                self._pending.append(self._filled - 1)
        else:
            queried = self.strategy.query(candidate, clf=self.clf)
            self.strategy.update(candidate, queried)
        return y_pred, len(queried) > 0

    def learn_one(self, x, y, **kwargs):
        self.model.learn_one(x, y)
        if self.window and self._pending:
            # Labels arrive in the order they were asked; one that arrives after its event has left
            # the window only trains the model.
            event = self._pending.popleft()
            if self._filled - event <= self.window:
                self._y[event % self.window] = self.index[y]


def _skactiveml(cls_name: str, **kwargs: Any) -> Callable[[Setting], tuple[Any, dict[str, Any]]]:
    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        from skactiveml import stream

        cls = getattr(stream, cls_name)
        window = None
        if cls_name == "StreamProbabilisticAL":
            strategy = cls(metric="rbf", budget=s.budget, random_state=s.seed, **kwargs)
            window = PAL_WINDOW
        else:
            strategy = cls(budget=s.budget, random_state=s.seed, **kwargs)
        model = make_model(s.model, s.seed)
        return SkactivemlStreamLearner(model, strategy, s.classes, s.features, window), {}

    return build


def all_methods(quick: bool, configs: Sequence[str]) -> list[Method]:
    methods = [Method("default", "activestream", _default)]
    default = make_learner("gnb").strategy  # the default's row already shows it
    named = [spec for spec, in_quick in NAMED_CONFIGS if (in_quick or not quick) and spec != default]
    methods += [activestream_config(spec) for spec in named]
    known = {m.key for m in methods}
    methods += [activestream_config(spec) for spec in dict.fromkeys(configs) if spec not in known]
    methods += [
        Method("random", "baseline", _random, "random sampling"),
        Method("river.EntropySampler", "river", _entropy_sampler, "river EntropySampler (calibrated)"),
        Method("skal.VariableUncertainty", "skactiveml", _skactiveml("VariableUncertainty"), slow=True),
        Method("skal.Split", "skactiveml", _skactiveml("Split"), slow=True),
        Method(
            "skal.RandomVariableUncertainty",
            "skactiveml",
            _skactiveml("RandomVariableUncertainty"),
            slow=True,
        ),
        Method("skal.StreamProbabilisticAL", "skactiveml", _skactiveml("StreamProbabilisticAL"), slow=True),
    ]
    return methods


# ---------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------


@dataclass
class Record:
    stream: str
    budget: float
    seed: int
    method: str
    family: str
    n_events: int
    labels_used: int
    accuracy: float
    kappa: float
    seconds: float
    build_seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Task:
    stream: str
    n: int | None
    seed: int
    budgets: tuple[float, ...]
    method_keys: tuple[str, ...]
    quick: bool
    configs: tuple[str, ...]
    model: str
    delay: int


#: Rough µs per event, to start the costliest tasks first.
_COST = {"skal.StreamProbabilisticAL": 2500, "river.EntropySampler": 20 * (CALIBRATION_STEPS + 1)}


@functools.lru_cache(maxsize=2)
def _events(stream: str, n: int | None, seed: int) -> tuple[tuple[dict[str, Any], Any], ...]:
    """A stream's events, kept for the worker's next tasks (generating one costs up to 75 µs an event)."""
    return tuple(make_stream(stream, n=n, seed=seed))


def run_task(task: Task) -> list[Record]:
    """Some methods, every budget, on one stream and seed (the stream is generated once per task)."""
    import sklearn

    methods = {m.key: m for m in all_methods(task.quick, task.configs)}
    data = _events(task.stream, task.n, task.seed)
    classes = tuple(sorted({y for _, y in data}, key=repr))  # the stream's schema
    features = tuple(sorted(data[0][0]))
    records = []
    for budget in task.budgets:
        for key in task.method_keys:
            method = methods[key]
            setting = Setting(task.model, budget, task.seed, classes, features, data, task.delay)
            start = time.perf_counter()
            # scikit-learn's input checks (run ~20 times per event inside scikit-activeml) cost a third
            # of its time; skipping them changes no result (checked), only the µs per event.
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                learner, info = method.build(setting)
                built = time.perf_counter()
                result: PrequentialResult = prequential(learner, data, delay=task.delay)
            done = time.perf_counter()
            curve = [(p.n_events, p.window_accuracy) for p in result.curve]
            records.append(
                Record(
                    task.stream,
                    budget,
                    task.seed,
                    key,
                    method.family,
                    result.n_events,
                    result.labels_used,
                    result.accuracy,
                    result.kappa,
                    done - built,
                    built - start,
                    info,
                    curve,
                )
            )
            print(
                f"  {task.stream:16s} seed={task.seed} B={budget:.0%} {key:55s} "
                f"acc={result.accuracy:.4f} labels={result.labels_fraction:.2%} "
                f"{(done - built) / max(result.n_events, 1) * 1e6:6.0f} µs/event",
                flush=True,
            )
    return records


# ---------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------


@dataclass
class Summary:
    stream: str
    budget: float
    method: str
    family: str
    n_events: int
    seeds: int
    accuracy: float
    accuracy_std: float
    kappa: float
    kappa_std: float
    labels: float
    labels_std: float
    us_per_event: float
    info: dict[str, Any]
    runs: dict[int, Record]  # by seed

    @property
    def over_budget(self) -> bool:
        return self.labels > self.budget * OVER_BUDGET_TOLERANCE

    @property
    def per_seed(self) -> list[float]:
        return [r.accuracy for r in self.runs.values()]

    def mean_curve(self, seeds: Sequence[int]) -> list[tuple[int, float]]:
        curves = [self.runs[seed].curve for seed in seeds]
        length = min(len(c) for c in curves)
        return [(curves[0][i][0], statistics.fmean(c[i][1] for c in curves)) for i in range(length)]


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(records: list[Record]) -> dict[tuple[str, float, str], Summary]:
    groups: dict[tuple[str, float, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[r.stream, r.budget, r.method].append(r)
    out = {}
    for key, group in groups.items():
        group.sort(key=lambda r: r.seed)
        accs = [r.accuracy for r in group]
        labels = [r.labels_used / r.n_events for r in group]
        info: dict[str, Any] = {}
        for r in group:
            for k, v in r.info.items():
                info.setdefault(k, []).append(v)
        info = {k: v[0] if len(set(map(str, v))) == 1 else v for k, v in info.items()}
        out[key] = Summary(
            stream=key[0],
            budget=key[1],
            method=key[2],
            family=group[0].family,
            n_events=group[0].n_events,
            seeds=len(group),
            accuracy=statistics.fmean(accs),
            accuracy_std=_std(accs),
            kappa=statistics.fmean(r.kappa for r in group),
            kappa_std=_std([r.kappa for r in group]),
            labels=statistics.fmean(labels),
            labels_std=_std(labels),
            us_per_event=sum(r.seconds for r in group) / sum(r.n_events for r in group) * 1e6,
            info=info,
            runs={r.seed: r for r in group},
        )
    return out


def machine_info() -> dict[str, str]:
    import river

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {"river": river.__version__, "numpy": np.__version__}
    try:
        import skactiveml

        versions["scikit-activeml"] = skactiveml.__version__
    except ImportError:
        versions["scikit-activeml"] = "not installed"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "load average at the end (shared machine)": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        **versions,
        "platform": platform.platform(),
    }


def _method_label(key: str, summaries: dict, methods: dict[str, Method]) -> str:
    if key == "default":
        strategies = {str(s.info.get("strategy")) for s in summaries.values() if s.method == "default"}
        return f"**activestream default** ({', '.join(sorted(strategies))})"
    method = methods.get(key)
    if method and method.family == "activestream":
        return f"activestream {key}"
    return (method.label if method and method.label else key) if method else key


def _table(
    summaries: dict[tuple[str, float, str], Summary],
    keys: Sequence[str],
    streams: Sequence[str],
    budget: float,
    by_key: dict[str, Method],
    all_seeds: int = 0,
    seed: int | None = None,
) -> list[str]:
    """Rows = methods, columns = streams: accuracy % (labels %), the best within budget in bold.

    With ``seed``, that seed's run of every method; otherwise the mean over seeds, and the methods with
    fewer than ``all_seeds`` seeds (‡) cannot be best (their mean is over other streams).
    """

    def cell(s: Summary) -> tuple[float, float, bool] | None:
        if seed is None:
            return s.accuracy, s.labels, s.seeds >= all_seeds
        run = s.runs.get(seed)
        return (run.accuracy, run.labels_used / run.n_events, True) if run else None

    def within(labels: float) -> bool:
        return labels <= budget * OVER_BUDGET_TOLERANCE

    values = {
        (k, st): v
        for k in keys
        for st in streams
        if (s := summaries.get((st, budget, k))) is not None and (v := cell(s)) is not None
    }
    best = {
        st: max(
            (acc for (_, t), (acc, lab, full) in values.items() if t == st and full and within(lab)),
            default=None,
        )
        for st in streams
    }
    rows = ["| method | " + " | ".join(streams) + " |", "|" + "---|" * (len(streams) + 1)]
    for key in keys:
        cells = []
        for st in streams:
            if (key, st) not in values:
                cells.append("—")
                continue
            acc, labels, full = values[key, st]
            text = f"{acc * 100:.2f} ({labels * 100:.1f})" + ("" if full else " ‡")
            if not within(labels):
                text += " †"
            elif full and best[st] is not None and acc >= best[st] - 1e-12:
                text = f"**{text}**"
            cells.append(text)
        rows.append(f"| {_method_label(key, summaries, by_key)} | " + " | ".join(cells) + " |")
    return rows


def write_report(
    summaries: dict[tuple[str, float, str], Summary],
    args: argparse.Namespace,
    methods: list[Method],
    streams: Sequence[str],
    wall_seconds: float,
    out: Path,
) -> str:
    by_key = {m.key: m for m in methods}
    keys = [m.key for m in methods if any(s.method == m.key for s in summaries.values())]
    budgets = sorted({s.budget for s in summaries.values()})
    info = machine_info()
    n_of = {st: next((s.n_events for s in summaries.values() if s.stream == st), 0) for st in streams}
    seeds = max((s.seeds for s in summaries.values()), default=0)
    lines = [
        "# Label efficiency",
        "",
        f"Mode: **{'quick' if args.quick else 'full'}**. Base learner `{args.model}` for every method; "
        f"label delay {args.delay}; {seeds} seed(s) per configuration (mean shown, std in the CSV); "
        f"wall time {wall_seconds / 60:.1f} min with {args.jobs} job(s).",
        "",
        "Streams and lengths: "
        + ", ".join(f"{st} n={n_of[st]:,}" for st in streams)
        + (" (synthetic streams shortened for the quick mode)." if args.quick else "."),
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
        "Protocol: prequential (test on every event, then decide; learn only the asked labels). Cells are "
        "accuracy % (labels used, % of events). Bold: the best accuracy per stream among methods within "
        f"{OVER_BUDGET_TOLERANCE:.0%} of the budget; † marks a method that used more labels than that "
        "(it cannot be best); ‡ marks a method run on fewer seeds (those costing over 100 µs per event run "
        "one seed in full mode, still on the whole stream: see the Cost table): its mean is over other "
        "streams, so it cannot be best here either — the same-seed tables below compare it fairly.",
        "",
    ]
    printed = []
    for budget in budgets:
        table = [f"## Budget {budget:.0%}", ""]
        table += _table(summaries, keys, streams, budget, by_key, all_seeds=seeds)
        table.append("")
        for st in streams:
            d, r = summaries.get((st, budget, "default")), summaries.get((st, budget, "random"))
            if d and r:
                wins = sum(a >= b for a, b in zip(d.per_seed, r.per_seed, strict=False))
                table.append(
                    f"- {st}: default vs random: {(d.accuracy - r.accuracy) * 100:+.1f} pp "
                    f"(default ≥ random on {wins}/{len(d.per_seed)} seeds; "
                    f"labels {d.labels * 100:.2f}% vs {r.labels * 100:.2f}%)"
                )
        table.append("")
        lines += table
        printed += table
    partial = [s for s in summaries.values() if s.seeds < seeds]
    if partial:
        first = min(min(s.runs) for s in partial)
        lines += [
            f"## Same seed: every method on seed {first}",
            "",
            f"The ‡ methods ran seed {first} only, and one seed's stream can be easier or harder than the "
            "mean over seeds: compare them here, every method on the same stream and seed.",
            "",
        ]
        for budget in budgets:
            lines += [f"### Budget {budget:.0%}, seed {first}", ""]
            lines += _table(summaries, keys, streams, budget, by_key, seed=first)
            lines.append("")
    # Cost and calibration.
    lines += ["## Cost", "", "Mean µs per event (predict + decide + learn) over all streams and budgets.", ""]
    lines += ["| method | µs/event |", "|---|---|"]
    for key in keys:
        group = [s for s in summaries.values() if s.method == key]
        total_events = sum(s.n_events * s.seeds for s in group)
        us = sum(s.us_per_event * s.n_events * s.seeds for s in group) / max(total_events, 1)
        lines.append(f"| {_method_label(key, summaries, by_key)} | {us:,.0f} |")
    lines.append("")
    entropy = [s for s in summaries.values() if s.method == "river.EntropySampler"]
    if entropy:
        lines += [
            "## river EntropySampler calibration",
            "",
            f"`discount_factor` bisected ({CALIBRATION_STEPS} runs, per seed) to ask for about B of the "
            "events of the stream it is scored on: an oracle calibration, in its favour.",
            "",
            "| stream | budget | discount_factor (per seed) | labels used |",
            "|---|---|---|---|",
        ]
        for s in sorted(entropy, key=lambda s: (s.budget, streams.index(s.stream))):
            lines.append(
                f"| {s.stream} | {s.budget:.0%} | {s.info.get('discount_factor')} | {s.labels:.2%} |"
            )
        lines.append("")
    lines += [
        "## Notes",
        "",
        "- scikit-activeml strategies are used as the library implements them; only the interface is "
        "adapted (`RiverClassifierForSkactiveml` answers `predict_proba` with the river model's "
        "probabilities). `StreamProbabilisticAL` uses `metric='rbf'` (a `ParzenWindowClassifier` fit on "
        f"the last {PAL_WINDOW} events, unlabeled ones missing, gives the label frequencies), on "
        "features standardised with running statistics.",
        "- Their budget managers estimate spending over a 100-event window; activestream's policies over "
        "1,000 events.",
        "- Synthetic streams draw their data from the seed, so a seed's std mixes stream and learner "
        "variation; elec varies only the learners' randomness.",
        "",
    ]
    text = "\n".join(lines)
    (out / "label_efficiency.md").write_text(text)
    print("\n".join(printed))
    return text


def write_csv(summaries: dict[tuple[str, float, str], Summary], out: Path) -> None:
    with open(out / "label_efficiency.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "budget",
                "stream",
                "n_events",
                "method",
                "family",
                "seeds",
                "accuracy_mean",
                "accuracy_std",
                "kappa_mean",
                "kappa_std",
                "labels_fraction_mean",
                "labels_fraction_std",
                "us_per_event",
                "accuracy_per_seed",
                "info",
            ]
        )
        for s in sorted(summaries.values(), key=lambda s: (s.budget, s.stream, s.method)):
            writer.writerow(
                [
                    s.budget,
                    s.stream,
                    s.n_events,
                    s.method,
                    s.family,
                    s.seeds,
                    f"{s.accuracy:.5f}",
                    f"{s.accuracy_std:.5f}",
                    f"{s.kappa:.5f}",
                    f"{s.kappa_std:.5f}",
                    f"{s.labels:.5f}",
                    f"{s.labels_std:.5f}",
                    f"{s.us_per_event:.1f}",
                    " ".join(f"{a:.5f}" for a in s.per_seed),
                    ";".join(f"{k}={v}" for k, v in s.info.items()),
                ]
            )


def plot_curves(
    summaries: dict[tuple[str, float, str], Summary], streams: Sequence[str], methods: list[Method], out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = {m.key for m in methods if m.peer}
    for budget in sorted({s.budget for s in summaries.values()}):
        for st in streams:
            lines = [s for k in ("default", "random") if (s := summaries.get((st, budget, k)))]
            if not lines:
                continue
            # The best peer within budget, judged on the seeds it shares with the default; every line is
            # then the mean over the seeds all of them ran.
            base = set(lines[0].runs)

            def shared_accuracy(s: Summary, seeds: set[int] = base) -> float:
                return statistics.fmean(s.runs[seed].accuracy for seed in seeds & set(s.runs))

            candidates = [
                s
                for k in peers
                if (s := summaries.get((st, budget, k))) and not s.over_budget and base & set(s.runs)
            ]
            if candidates:
                lines.append(max(candidates, key=shared_accuracy))
            seeds = sorted(set.intersection(*(set(s.runs) for s in lines)))
            fig, ax = plt.subplots(figsize=(8, 4.5))
            for s, style in zip(lines, ("-", "--", ":"), strict=False):
                xs, ys = zip(*s.mean_curve(seeds), strict=True)
                acc = statistics.fmean(s.runs[seed].accuracy for seed in seeds)
                labels = statistics.fmean(s.runs[seed].labels_used / s.runs[seed].n_events for seed in seeds)
                name = "activestream default" if s.method == "default" else s.method
                ax.plot(xs, ys, style, label=f"{name}: {acc * 100:.2f}% ({labels * 100:.1f}% labels)")
            which = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, seeds))}"
            ax.set_title(f"{st}, budget {budget:.0%}: accuracy over the last 1,000 events ({which})")
            ax.set_xlabel("events")
            ax.set_ylabel("window accuracy")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
            fig.tight_layout()
            fig.savefig(out / f"label_efficiency_{st}_{round(budget * 100)}.png", dpi=110)
            plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"n={QUICK_N:,} per stream, 1 seed")
    parser.add_argument("--model", default="logreg", help="base learner for every method (models.MODELS)")
    parser.add_argument("--budgets", default="0.05,0.10", help="comma-separated budgets")
    parser.add_argument("--delay", type=int, default=0, help="label delay in events")
    parser.add_argument("--streams", default=",".join(STREAMS), help="comma-separated stream names")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 3, quick: 1)")
    parser.add_argument("--first-seed", type=int, default=1, help="seeds run first-seed, first-seed + 1, ...")
    parser.add_argument(
        "--n", type=int, default=None, help="events per synthetic stream (overrides the mode)"
    )
    parser.add_argument(
        "--methods", default=None, help="comma-separated method keys to run (default: all of the mode)"
    )
    parser.add_argument(
        "--configs",
        default="",
        help="extra activestream configs, ';'-separated measure[k=v,..]/policy[k=v,..]",
    )
    parser.add_argument(
        "--slow-seeds",
        type=int,
        default=None,
        help="seeds for the methods over 100 µs/event (default: 1 in full mode, all in quick mode)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument(
        "--save-runs", type=Path, default=None, help="pickle every run here (for --report-only)"
    )
    parser.add_argument(
        "--report-only", type=Path, default=None, help="rewrite the outputs from runs saved by --save-runs"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    budgets = tuple(float(b) for b in args.budgets.split(","))
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    configs = tuple(c.strip() for c in args.configs.split(";") if c.strip())
    seeds = args.seeds or (1 if args.quick else 3)
    synthetic_n = args.n or (QUICK_N if args.quick else SYNTHETIC_N)
    methods = all_methods(args.quick, configs)
    if args.methods:
        wanted = [k.strip() for k in args.methods.split(",")]
        unknown = set(wanted) - {m.key for m in methods}
        if unknown:
            raise SystemExit(f"unknown methods {sorted(unknown)}; known: {[m.key for m in methods]}")
        methods = [m for m in methods if m.key in wanted or m.key in configs]
    slow_seeds = min(seeds, args.slow_seeds if args.slow_seeds is not None else (seeds if args.quick else 1))
    elec_n = args.n or (QUICK_N if args.quick else None)
    tasks = []
    for stream in streams:
        n = elec_n if stream == "elec" else synthetic_n
        for seed in range(args.first_seed, args.first_seed + seeds):
            common = dict(stream=stream, n=n, seed=seed, quick=args.quick, configs=configs)
            common |= dict(model=args.model, delay=args.delay)
            cheap = tuple(m.key for m in methods if not m.slow)
            if cheap:
                tasks.append(Task(budgets=budgets, method_keys=cheap, **common))
            if seed < args.first_seed + slow_seeds:
                slow = [m.key for m in methods if m.slow]
                tasks += [Task(budgets=(b,), method_keys=(k,), **common) for k in slow for b in budgets]
    # Costliest tasks first, so that parallel workers finish together.
    cost = {m.key: _COST.get(m.key, 300 if m.slow else 25) for m in methods}
    tasks.sort(key=lambda t: -(t.n or ELEC_N) * len(t.budgets) * sum(cost[k] for k in t.method_keys))
    print(
        f"label efficiency: {'quick' if args.quick else 'full'} mode, {len(methods)} methods, "
        f"{len(streams)} streams, budgets {budgets}, {seeds} seed(s) ({slow_seeds} for the slow methods), "
        f"synthetic n={synthetic_n:,}, model {args.model}, delay {args.delay}, {args.jobs} job(s), "
        f"{len(tasks)} tasks",
        flush=True,
    )
    start = time.perf_counter()
    records: list[Record] = []
    if args.report_only:
        with open(args.report_only, "rb") as f:
            saved = pickle.load(f)
        records, wall = saved["records"], saved["wall"]
    elif args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            for chunk in pool.imap_unordered(run_task, tasks):
                records += chunk
    else:
        for task in tasks:
            records += run_task(task)
    if not args.report_only:
        wall = time.perf_counter() - start
        if args.save_runs:
            with open(args.save_runs, "wb") as f:
                pickle.dump({"records": records, "wall": wall}, f)
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = summarise(records)
    write_report(summaries, args, methods, streams, wall, args.out)
    write_csv(summaries, args.out)
    plot_curves(summaries, streams, methods, args.out)
    print(f"wall time {wall / 60:.1f} min; results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    fix_string_hashes()
    sys.exit(main())
