"""Against the field: label efficiency of activestream and its peers, same protocol, same base learner.

Protocol (Žliobaitė et al. 2014): prequential — every event first tests the model, then the method
decides whether to ask for its label; only asked labels are learned, ``delay`` events later, and every
asked label counts against the budget. Every method of a cell (stream × base learner × delay × budget)
drives a fresh copy of the same river base learner (``activestream.models``: ``logreg`` = scaled logistic
regression, ``hat`` = Hoeffding adaptive tree, ``gnb`` = Gaussian naive Bayes) on the same events.

Methods (``METHODS``):

- activestream: the default (``make_learner``: margin + split) and configurations covering every measure
  (least confidence, margin, entropy, query-by-committee, density-weighted, expected model change) and
  every budgeted policy;
- random sampling at the budget (``activestream.evaluate.random_sampling``);
- river's ``active.EntropySampler``: it has no budget, so its ``discount_factor`` is swept over
  ``ENTROPY_DISCOUNTS`` once per stream × learner × delay and, for each budget, the run whose labels used
  are closest to it is reported (with the labels it actually used);
- scikit-activeml's stream strategies, unchanged, about the same river model (``label_efficiency``'s
  ``SkactivemlStreamLearner`` adapter): VariableUncertainty, RandomVariableUncertainty, Split,
  StreamProbabilisticAL and the four CognitiveDualQuery variants;
- MOA's ``ALUncertainty`` (VarUncertainty, RandVarUncertainty, SelSampling) and its random sampling
  (``ALRandom``, also run at 100%: the ceiling of MOA's learners) through capymoa, on MOA's own
  base learners (NaiveBayes for ``gnb``, HoeffdingAdaptiveTree for ``hat``; MOA has no logistic
  regression, so no MOA row for ``logreg``). MOA decides with the label in hand, so with a delay it
  decides when the label arrives (``field_peers.prequential_offer``), free of verification latency;
  ``moa.VarUncertainty at ask`` is MOA's rule on the same learner deciding when the event arrives, as
  everyone else does (``field_peers.MoaVarUncertaintyAtAsk``; the same decisions without delay);
- any other activestream configuration named ``activestream <measure[k=v,...]/policy[k=v,...]>`` on the
  command line (``--methods``; use ``;`` between keys that contain commas);
- the fully supervised ceiling (budget 100%: every label), once per stream × learner × delay.

Run from the repository root (``PYTHONPATH=service`` or the package installed with the ``bench`` extra)::

    python benchmarks/field.py --quick     # smoke test: every method, short streams, a few minutes
    python benchmarks/field.py             # full matrix (about 30 min on the shared 2 cores)

Outputs in ``benchmarks/results/`` (``--out``): ``field.md`` (``field_quick.md`` in quick mode),
``field.csv`` and ``field_curves.png``. Seeds are fixed (``--seed``): same seed, same numbers.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import pickle
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from activestream.datasets import make_stream
from activestream.evaluate import PrequentialResult, prequential
from activestream.models import MODELS, make_model
from field_peers import (
    MOA_BASE,
    MOA_STRATEGIES,
    MoaUncertainty,
    MoaVarUncertaintyAtAsk,
    RiverActive,
    Supervised,
    prequential_offer,
)
from label_efficiency import Setting, _default, _random, _skactiveml, activestream_config, fix_string_hashes

STREAMS = (
    "sea_abrupt",
    "agrawal_gradual",
    "hyperplane",
    "stagger_recurring",
    "rbf_drift",
    "elec",
    "phishing",
    "image_segments",
)
LEARNERS = ("logreg", "hat", "gnb")
BUDGETS = (0.01, 0.05, 0.10, 0.20)
DELAYS = (0, 500, 2000)
#: river EntropySampler discount factors swept (asks with probability normalised entropy ** discount).
ENTROPY_DISCOUNTS = tuple(2.0 ** (k / 2) for k in range(-4, 25))  # 0.25 .. 4096
#: A method using more than this many times the budget is marked over budget (†) and cannot be best.
OVER_BUDGET_TOLERANCE = 1.10
RESULTS = Path(__file__).resolve().parent / "results"

#: activestream configurations beyond the default (``measure[params]/policy[params]``).
OURS = (
    "least_confidence/selective_sampling",
    "entropy/biqf",
    "entropy/variable_uncertainty",
    "entropy/randomized_variable_uncertainty",
    "expected_model_change/variable_uncertainty",
    "qbc_vote_entropy/randomized_variable_uncertainty",
    "density[inner=least_confidence,memory=50]/selective_sampling",
)
SKACTIVEML = (
    "VariableUncertainty",
    "RandomVariableUncertainty",
    "Split",
    "StreamProbabilisticAL",
    "CognitiveDualQueryStrategyRan",
    "CognitiveDualQueryStrategyFixUn",
    "CognitiveDualQueryStrategyVarUn",
    "CognitiveDualQueryStrategyRanVarUn",
)


# ---------------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------------


def _river_dataset(name: str) -> list[tuple[dict[str, Any], Any]]:
    from river import datasets

    dataset = {"phishing": datasets.Phishing, "image_segments": datasets.ImageSegments}[name]()
    return [({str(k): float(v) for k, v in x.items()}, y) for x, y in dataset]


@functools.lru_cache(maxsize=2)
def load_stream(name: str, n: int | None, seed: int) -> tuple[tuple[dict[str, Any], Any], ...]:
    """The events of a stream, at most ``n`` (``None``: the whole bundled data set).

    >>> len(load_stream("phishing", 100, 1)), len(load_stream("sea_abrupt", 200, 1))
    (100, 200)
    """
    if name in ("phishing", "image_segments"):
        return tuple(_river_dataset(name)[:n])
    return tuple(make_stream(name, n=n, seed=seed))


# ---------------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------------


def _logreg_ovr(seed: int | None) -> Any:
    """``logreg`` for more than two classes: the same scaled logistic regression, one-vs-rest."""
    from river import multiclass

    pipeline = MODELS["logreg"](seed)
    *steps, logistic = pipeline.steps.values()
    return functools.reduce(lambda a, b: a | b, steps) | multiclass.OneVsRestClassifier(logistic)


#: Every method (ours and the peers' adapters) builds it by name. ``activestream.models`` registers the same
#: model under this name since commit 22cfc88 (this run's results predate it); keep that one when present.
MODELS.setdefault("logreg_ovr", _logreg_ovr)


def model_name(learner: str, n_classes: int) -> str:
    """The registry name of ``learner`` for a stream of ``n_classes`` classes.

    >>> model_name("logreg", 7), model_name("logreg", 2), model_name("hat", 7)
    ('logreg_ovr', 'logreg', 'hat')
    """
    return "logreg_ovr" if learner == "logreg" and n_classes > 2 else learner


@dataclass(frozen=True)
class Method:
    """A row of the tables: ``build(setting) -> (learner, info)``; ``offer`` learners decide late."""

    key: str
    family: str  # activestream, baseline, river, skactiveml, moa, ceiling
    build: Callable[[Setting], tuple[Any, dict[str, Any]]]
    learners: tuple[str, ...] = LEARNERS
    offer: bool = False


def _moa(strategy: str) -> Callable[[Setting], tuple[Any, dict[str, Any]]]:
    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        base = MOA_BASE[s.model]
        return MoaUncertainty(strategy, base, s.budget, s.classes, s.features, s.seed), {"moa_base": base}

    return build


def _moa_at_ask(s: Setting) -> tuple[Any, dict[str, Any]]:
    base = MOA_BASE[s.model]
    return MoaVarUncertaintyAtAsk(base, s.budget, s.classes, s.features, s.seed), {"moa_base": base}


#: MOA's VarUncertainty rule deciding when the event arrives (``field_peers.MoaVarUncertaintyAtAsk``): the
#: same decisions as ``moa.VarUncertainty`` without delay, the only fair MOA row with one.
MOA_AT_ASK = "moa.VarUncertainty at ask"


def _skal(name: str) -> Callable[[Setting], tuple[Any, dict[str, Any]]]:
    if name != "CognitiveDualQueryStrategyFixUn":
        return _skactiveml(name)

    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        # The fixed-uncertainty variant derives its threshold from the number of classes.
        return _skactiveml(name, classes=list(range(len(s.classes))))(s)

    return build


def _entropy_sampler(discount: float) -> Callable[[Setting], tuple[Any, dict[str, Any]]]:
    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        from river import active

        sampler = active.EntropySampler(make_model(s.model, s.seed), discount_factor=discount, seed=s.seed)
        return RiverActive(sampler), {"discount_factor": discount}

    return build


def _ceiling(s: Setting) -> tuple[Any, dict[str, Any]]:
    return Supervised(make_model(s.model, s.seed)), {}


ENTROPY = "river.EntropySampler"
CEILING = "supervised (100%)"
#: MOA's random sampling, also run at 100%: the ceiling of MOA's own learners.
MOA_CEILING = "moa.ALRandom"


def _service(s: Setting) -> tuple[Any, dict[str, Any]]:
    """What ``activestream run`` builds by default: the default strategy, its learner inside the drift
    arms (active and passive, champion by the unbiased estimate), from the service's own settings."""
    from activestream.assembly import learner_from_settings
    from activestream.config import Settings

    learner = learner_from_settings(Settings(model=s.model, budget=s.budget, seed=s.seed))
    return learner, {"strategy": learner.strategy}


#: The service's default (drift arms around the default strategy), next to the bare default.
SERVICE = "activestream service default"


def budgeted_methods() -> list[Method]:
    """Every method run once per budget."""
    methods = [
        Method("activestream default", "activestream", _default),
        Method(SERVICE, "activestream", _service),
    ]
    for spec in OURS:
        m = activestream_config(spec)
        methods.append(Method(f"activestream {spec}", "activestream", m.build))
    methods.append(Method("random", "baseline", _random))
    methods += [Method(f"skal.{name}", "skactiveml", _skal(name)) for name in SKACTIVEML]
    methods += [
        Method(f"moa.{name}", "moa", _moa(name), learners=tuple(MOA_BASE), offer=True)
        for name in MOA_STRATEGIES
    ]
    methods.append(Method(MOA_AT_ASK, "moa", _moa_at_ask, learners=tuple(MOA_BASE)))
    return methods


METHODS = {m.key: m for m in budgeted_methods()}


def register(key: str) -> Method:
    """Add ``activestream <measure[params]/policy[params]>`` to ``METHODS`` (any configuration, not only
    ``OURS``), so an experiment needs no edit here.

    >>> register("activestream margin/confidence_split[v=0.2]").family
    'activestream'
    """
    m = activestream_config(key.removeprefix("activestream "))
    METHODS[key] = Method(key, "activestream", m.build)
    return METHODS[key]


def method_for(key: str, budget: float, info: float | None) -> Method:
    if key not in METHODS and key.startswith("activestream "):
        register(key)
    if key == ENTROPY:
        return Method(ENTROPY, "river", _entropy_sampler(float(info or 1.0)))
    if key == CEILING:
        return Method(CEILING, "ceiling", _ceiling)
    return METHODS[key]


# ---------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One prequential run: ``budget`` 1.0 for the ceiling; ``param`` is the EntropySampler's discount."""

    method: str
    budget: float
    param: float | None = None


@dataclass(frozen=True)
class Task:
    stream: str
    n: int | None
    learner: str
    delay: int
    seed: int
    runs: tuple[Run, ...]
    cost: float = 0.0  # estimated seconds, to start the longest tasks first
    deadline: float | None = None  # time.time() after which the task is skipped (and reported)


@dataclass
class Record:
    stream: str
    learner: str
    delay: int
    budget: float
    method: str
    family: str
    n_events: int
    labels_used: int
    accuracy: float
    kappa: float
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[int, int, float]] = field(default_factory=list)  # (events, labels, accuracy)

    @property
    def labels_fraction(self) -> float:
        return self.labels_used / self.n_events if self.n_events else 0.0

    @property
    def us_per_event(self) -> float:
        return self.seconds / max(self.n_events, 1) * 1e6


def run_one(task: Task, run: Run) -> Record:
    """One method on one cell; raises whatever the method raises (a broken peer must fail loudly)."""
    import sklearn

    data = load_stream(task.stream, task.n, task.seed)
    classes = tuple(sorted({y for _, y in data}, key=repr))
    features = tuple(sorted(data[0][0]))
    method = method_for(run.method, run.budget, run.param)
    setting = Setting(
        model_name(task.learner, len(classes)), run.budget, task.seed, classes, features, data, task.delay
    )
    # scikit-learn's input checks (run ~20 times per event inside scikit-activeml) cost a third of its
    # time and change no result.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        learner, info = method.build(setting)
        start = time.perf_counter()
        every = max(len(data) // 40, 1)
        if method.offer:
            result: PrequentialResult = prequential_offer(learner, data, task.delay, curve_every=every)
        else:
            result = prequential(learner, data, delay=task.delay, curve_every=every)
        seconds = time.perf_counter() - start
    if run.param is not None:
        info = {**info, "discount_factor": run.param}
    return Record(
        task.stream,
        task.learner,
        task.delay,
        run.budget,
        run.method,
        method.family,
        result.n_events,
        result.labels_used,
        result.accuracy,
        result.kappa,
        seconds,
        info,
        [(p.n_events, p.labels_used, p.accuracy) for p in result.curve],
    )


def run_task(task: Task) -> tuple[list[Record], list[tuple[Task, Run]]]:
    """Every run of a task, or none once ``task.deadline`` (a ``time.time()``) has passed."""
    if task.deadline is not None and time.time() > task.deadline:
        return [], [(task, run) for run in task.runs]
    # scikit-activeml warns on every CognitiveDualQuery update that force_full_budget is off (its
    # default, kept) and when a window's variance is 0: noise in a log of thousands of runs.
    warnings.filterwarnings("ignore", category=UserWarning, module="skactiveml")
    records = []
    for run in task.runs:
        r = run_one(task, run)
        records.append(r)
        print(
            f"  {task.stream:17s} {task.learner:6s} d={task.delay:<3d} B={run.budget:4.0%} "
            f"{run.method[:58]:58s} acc={r.accuracy:.4f} labels={r.labels_fraction:6.2%} "
            f"{r.us_per_event:7.0f} µs/ev",
            flush=True,
        )
    return records, []


# ---------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What runs: streams and their lengths, and which methods run on which sub-grid."""

    lengths: dict[str, int | None]
    learners: tuple[str, ...]
    budgets: tuple[float, ...]
    delays: tuple[int, ...]
    #: Methods restricted to a sub-grid: key -> (streams, learners, budgets, delays) it runs on.
    restricted: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, ...], tuple[int, ...]]]
    #: Estimated µs per event by method (for ordering the tasks).
    cost_us: dict[str, float]
    methods: tuple[str, ...] = tuple(METHODS)
    entropy_discounts: tuple[float, ...] = ENTROPY_DISCOUNTS
    #: Run the ceiling and the EntropySampler sweep of every stream × learner × delay.
    shared: bool = True


def _runs_on(plan: Plan, key: str, stream: str, learner: str, budget: float, delay: int) -> bool:
    if learner not in METHODS[key].learners:
        return False
    if key not in plan.restricted:
        return True
    streams, learners, budgets, delays = plan.restricted[key]
    return stream in streams and learner in learners and budget in budgets and delay in delays


def make_tasks(plan: Plan, seed: int, deadline: float | None = None) -> list[Task]:
    """One task per cell and method (the sweep and the ceiling per stream × learner × delay).

    Tasks hold one method each so that a pool spreads the slow ones; a worker keeps the two streams
    it used last in memory.
    """
    tasks = []
    for stream, n in plan.lengths.items():
        for learner in plan.learners:
            for delay in plan.delays:
                cell = dict(stream=stream, n=n, learner=learner, delay=delay, seed=seed)
                events = n or 2_500
                runs: list[tuple[Run, ...]] = []
                if plan.shared:
                    runs.append((Run(CEILING, 1.0),))
                    runs.append(tuple(Run(ENTROPY, 0.0, d) for d in plan.entropy_discounts))
                for key in plan.methods:
                    budgets = [b for b in plan.budgets if _runs_on(plan, key, stream, learner, b, delay)]
                    if key == MOA_CEILING and budgets:
                        budgets.append(1.0)  # every label, on MOA's own learner
                    if budgets:
                        runs.append(tuple(Run(key, b) for b in budgets))
                for group in runs:
                    us = sum(plan.cost_us.get(r.method, 100.0) for r in group)
                    tasks.append(Task(runs=group, cost=us * events / 1e6, deadline=deadline, **cell))
    tasks.sort(key=lambda t: -t.cost)
    return tasks


#: µs per event per run measured by the first quick run (2-class streams, every learner, load average
#: 5 on 2 cores: wall-clock under contention): orders the tasks, longest first, and estimates the run.
COST_US: dict[str, float] = {
    "activestream default": 150,
    SERVICE: 450,
    "activestream least_confidence/selective_sampling": 90,
    "activestream entropy/biqf": 85,
    "activestream entropy/variable_uncertainty": 75,
    "activestream entropy/randomized_variable_uncertainty": 190,
    "activestream expected_model_change/variable_uncertainty": 160,
    "activestream qbc_vote_entropy/randomized_variable_uncertainty": 2100,
    "activestream density[inner=least_confidence,memory=50]/selective_sampling": 940,
    "random": 150,
    ENTROPY: 30,
    CEILING: 130,
    "skal.VariableUncertainty": 830,
    "skal.RandomVariableUncertainty": 1300,
    "skal.Split": 1550,
    "skal.StreamProbabilisticAL": 12300,
    "skal.CognitiveDualQueryStrategyRan": 3500,
    "skal.CognitiveDualQueryStrategyFixUn": 2400,
    "skal.CognitiveDualQueryStrategyVarUn": 2900,
    "skal.CognitiveDualQueryStrategyRanVarUn": 3700,
    "moa.VarUncertainty": 230,
    "moa.RandVarUncertainty": 350,
    "moa.SelSampling": 200,
    "moa.ALRandom": 150,
    MOA_AT_ASK: 260,
}

#: Over 500 µs per event: run on a sub-grid (``FULL.restricted``).
MID = (
    "skal.VariableUncertainty",
    "skal.RandomVariableUncertainty",
    "skal.Split",
    "activestream qbc_vote_entropy/randomized_variable_uncertainty",
    "activestream density[inner=least_confidence,memory=50]/selective_sampling",
)
#: Over 2,000 µs per event: a smaller sub-grid.
SLOW = (
    "skal.StreamProbabilisticAL",
    "skal.CognitiveDualQueryStrategyRan",
    "skal.CognitiveDualQueryStrategyFixUn",
    "skal.CognitiveDualQueryStrategyVarUn",
    "skal.CognitiveDualQueryStrategyRanVarUn",
)

FULL = Plan(
    lengths={
        "sea_abrupt": 8_000,
        "agrawal_gradual": 8_000,
        "hyperplane": 8_000,
        "stagger_recurring": 8_000,
        "rbf_drift": 8_000,
        "elec": 8_000,
        "phishing": None,  # 1,250: the whole data set
        "image_segments": None,  # 2,310
    },
    learners=LEARNERS,
    budgets=BUDGETS,
    delays=DELAYS,
    restricted={
        **{k: (STREAMS, LEARNERS, BUDGETS, (0,)) for k in MID},
        **{k: (STREAMS, ("logreg",), (0.10,), (0,)) for k in SLOW},
    },
    cost_us=COST_US,
)

#: Every method on a binary and a multiclass stream, every learner, both delays (the slow ones without
#: delay): minutes, and any peer that breaks stops it.
QUICK = Plan(
    lengths={"sea_abrupt": 1_000, "image_segments": 500},
    learners=LEARNERS,
    budgets=(0.10,),
    delays=(0, 500),
    restricted={k: (STREAMS, LEARNERS, (0.10,), (0,)) for k in (*MID, *SLOW)},
    cost_us=COST_US,
    entropy_discounts=(0.5, 2.0, 8.0),
)


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds in a daemon thread."""

    def __init__(self, every: float = 15.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> list[float]:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])
        return self.samples


def run_plan(
    plan: Plan, seed: int, jobs: int, deadline_minutes: float | None = None, save: Path | None = None
) -> tuple[list[Record], list[tuple[Task, Run]], float, list[float]]:
    """Run every task of ``plan`` on ``jobs`` processes; tasks not started within ``deadline_minutes``
    are skipped and returned with the records, the wall time and the load averages sampled. With
    ``save``, each finished task's records are appended to that pickle file (a crash keeps them)."""
    deadline = time.time() + deadline_minutes * 60 if deadline_minutes else None
    tasks = make_tasks(plan, seed, deadline)
    estimate = sum(t.cost for t in tasks) / max(jobs, 1) / 60
    print(
        f"field: {len(tasks)} tasks, {sum(len(t.runs) for t in tasks)} runs, {jobs} job(s), "
        f"estimated {estimate:.0f} min at the measured (loaded) cost",
        flush=True,
    )
    load = LoadSampler()
    start = time.perf_counter()
    records: list[Record] = []
    skipped: list[tuple[Task, Run]] = []
    journal = open(save, "ab") if save else None  # noqa: SIM115 - appended to as tasks finish
    try:
        if jobs > 1:
            # Fork before any JVM starts: each worker starts its own when it first runs a MOA peer.
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for done, missed in pool.imap_unordered(run_task, tasks):
                    records += done
                    skipped += missed
                    if journal:
                        pickle.dump(done, journal)
                        journal.flush()
        else:
            for task in tasks:
                done, missed = run_task(task)
                records += done
                skipped += missed
                if journal:
                    pickle.dump(done, journal)
                    journal.flush()
    finally:
        if journal:
            journal.close()
    return records, skipped, time.perf_counter() - start, load.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short streams, 2 budgets: a smoke test")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the streams and the learners")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument(
        "--methods", default=None, help="comma- (or ';'-) separated method keys (default: all)"
    )
    parser.add_argument("--streams", default=None, help="comma-separated streams (default: all)")
    parser.add_argument("--learners", default=None, help="comma-separated base learners (default: all)")
    parser.add_argument("--n", type=int, default=None, help="events per stream (overrides the mode)")
    parser.add_argument(
        "--save", type=Path, default=None, help="append every finished task's records to this pickle file"
    )
    parser.add_argument(
        "--report-from", type=Path, nargs="+", default=None, help="write the outputs from --save files"
    )
    parser.add_argument("--wall-minutes", type=float, default=None, help="the wall time, with --report-from")
    parser.add_argument("--load", default=None, help="the runs' load averages (text), with --report-from")
    parser.add_argument("--note", default="", help="how the runs were made (text), with --report-from")
    parser.add_argument("--delays", default=None, help="comma-separated label delays (default: the mode's)")
    parser.add_argument(
        "--unrestricted", action="store_true", help="ignore the mode's sub-grids (a supplement)"
    )
    parser.add_argument(
        "--skip-shared", action="store_true", help="no ceiling nor EntropySampler sweep (a supplement)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="minutes after which tasks not yet started are skipped and listed (default: none)",
    )
    return parser.parse_args(argv)


def select(plan: Plan, args: argparse.Namespace) -> Plan:
    """Narrow a plan to the ``--methods``, ``--streams``, ``--learners`` and ``--n`` asked for."""
    lengths = dict(plan.lengths)
    if args.streams:
        wanted = [s.strip() for s in args.streams.split(",")]
        unknown = set(wanted) - set(STREAMS)
        if unknown:
            raise SystemExit(f"unknown streams {sorted(unknown)}; known: {list(STREAMS)}")
        lengths = {s: lengths.get(s) for s in wanted}
    if args.n:
        lengths = {s: args.n for s in lengths}
    methods = plan.methods
    if args.methods:
        # ";" separates keys that contain commas (``density[inner=...,memory=50]/...``).
        sep = ";" if ";" in args.methods else ","
        methods = tuple(k.strip() for k in args.methods.split(sep) if k.strip())
        for key in methods:
            if key not in METHODS and key.startswith("activestream "):
                register(key)
        unknown = set(methods) - set(METHODS)
        if unknown:
            raise SystemExit(f"unknown methods {sorted(unknown)}; known: {list(METHODS)}")
    learners = tuple(args.learners.split(",")) if args.learners else plan.learners
    delays = tuple(int(d) for d in args.delays.split(",")) if args.delays else plan.delays
    return Plan(
        lengths,
        learners,
        plan.budgets,
        delays,
        {} if args.unrestricted else plan.restricted,
        plan.cost_us,
        methods,
        plan.entropy_discounts,
        shared=plan.shared and not args.skip_shared,
    )


def git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    from field_report import write_outputs

    args = parse_args(argv)
    plan = select(QUICK if args.quick else FULL, args)
    if args.report_from:
        # Rebuild the outputs from a journal (--save) of a run that did not finish.
        records, skipped, wall = [], [], (args.wall_minutes or 0.0) * 60
        load = []
        for path in args.report_from:
            with open(path, "rb") as f:
                while True:
                    try:
                        records += pickle.load(f)
                    except EOFError:
                        break
        args.commit = git_commit()
        args.out.mkdir(parents=True, exist_ok=True)
        write_outputs(records, skipped, plan, args, wall, load, args.out)
        return 0
    args.commit = git_commit()  # of the code that runs, before others commit more
    records, skipped, wall, load = run_plan(plan, args.seed, args.jobs, args.deadline, args.save)
    args.out.mkdir(parents=True, exist_ok=True)
    write_outputs(records, skipped, plan, args, wall, load, args.out)
    print(f"wall time {wall / 60:.1f} min; results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    fix_string_hashes()
    # Run as the module ``field`` (not ``__main__``), the name field_report and the workers import.
    import field

    sys.exit(field.main())
