"""A policy tried and not kept: error-proportional sampling, against the default and random sampling.

The idea is loss-proportional subsampling (Mineiro & Karampatziakis, "Loss-Proportional Subsampling for
Subsequent ERM", ICML 2013): ask each event with a probability proportional to its expected loss. Here
the loss is not the model's own ``1 - p_max`` (a saturated naive Bayes or a stale model under label delay
misjudges it) but the error rate observed in the event's decile of the last ``WINDOW`` confidences
(``c = p1 - p2``), learned from the labels as they arrive (forgetting over ``MEMORY`` labels a decile,
shrunk towards the pooled rate). An event of decile ``k`` is asked with probability
``B * e_k**gamma / mean(e**gamma)``, clipped to ``[FLOOR * B, 1]`` and paced on the last 1,000 events. Every
decile starts at the same rate: random sampling from the first event, a known ask probability throughout.

Protocol: ``field.py``'s runner (prequential, every asked label charged, labels ``delay`` events late),
every stream × learner of the field grid, budgets 5 and 10%, delays 0, 500 and 2,000, against random
sampling and ``activestream default`` on the same seed. Writes ``results/error_proportional.md``::

    PYTHONPATH=service python benchmarks/error_proportional.py --seeds 1,2,3 --gammas 2,4
"""

from __future__ import annotations

import argparse
import bisect
import collections
import itertools
import os
import pickle
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from activestream.learner import ActiveLearner, Decision
from activestream.models import make_model
from field import FULL, LEARNERS, METHODS, RESULTS, STREAMS, Method, Record, Run, Task, git_commit, run_one
from field_report import machine_info
from label_efficiency import Setting, fix_string_hashes

BINS, WINDOW, MEMORY, PRIOR, FLOOR = 10, 1000, 50, 5.0, 0.1
BUDGETS, DELAYS = (0.05, 0.10), (0, 500, 2000)
BASELINES = ("random", "activestream default")


class ErrorProportional(ActiveLearner):
    """Asks with a probability proportional to the observed error rate of the event's confidence decile.

    >>> from river import linear_model
    >>> learner = ErrorProportional(linear_model.LogisticRegression(), budget=0.5, seed=1, gamma=2.0)
    >>> asks = [learner.decide({"x": float(i % 3)}).ask for i in range(400)]
    >>> 0.4 < sum(asks) / len(asks) < 0.6  # cold: every decile at the same rate, random sampling at B
    True
    """

    def __init__(self, classifier: Any, budget: float, seed: int, gamma: float) -> None:
        super().__init__(classifier, budget=budget, seed=seed)
        self.gamma, self._rng = gamma, random.Random(seed)
        self._recent: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        self._n, self._errors = [0.0] * BINS, [0.0] * BINS
        self._pooled_n = self._pooled_errors = 0.0
        self._asked: collections.deque[bool] = collections.deque(maxlen=1000)
        self._memo: dict[int, tuple[int, Any]] = {}  # id(x) of an asked event -> (decile, prediction)

    def _probabilities(self) -> list[float]:
        pooled = (self._pooled_errors + 0.5) / (self._pooled_n + 1.0)
        rates = [
            ((e + PRIOR * pooled) / (n + PRIOR)) ** self.gamma
            for e, n in zip(self._errors, self._n, strict=True)
        ]
        mean, budget = sum(rates) / BINS, self.budget
        p = [min(1.0, max(FLOOR * budget, budget * r / mean)) for r in rates]
        for _ in range(4):  # clipping moved the mean: rescale towards B
            scale = budget / (sum(p) / BINS)
            p = [min(1.0, max(FLOOR * budget, q * scale)) for q in p]
        return p

    def _decile(self, confidence: float) -> int:
        rank = bisect.bisect_left(self._sorted, confidence)
        decile = min(BINS - 1, rank * BINS // len(self._sorted)) if self._sorted else 0
        self._recent.append(confidence)
        bisect.insort(self._sorted, confidence)
        if len(self._recent) > WINDOW:
            del self._sorted[bisect.bisect_left(self._sorted, self._recent.popleft())]
        return decile

    def decide(self, x: dict[str, Any]) -> Decision:
        proba = dict(self.classifier.predict_proba_one(x))
        top = [*sorted(proba.values(), reverse=True), 0.0, 0.0]
        decile = self._decile(top[0] - top[1] if proba else 0.0)
        p = self._probabilities()[decile]
        if len(self._asked) >= 200:  # pacing: correct the spend of the last 1,000 events
            p = min(1.0, p * min(2.0, max(0.5, self.budget / max(sum(self._asked) / len(self._asked), 1e-6))))
        ask = self._rng.random() < p
        self._asked.append(ask)
        y_pred, proba = self.present(proba)
        if ask:
            self._memo[id(x)] = (decile, y_pred)
        return Decision(y_pred, proba, 1 - top[0] + top[1], 0.0, ask, "errprop", "errprop", p, self.trained)

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        asked = self._memo.pop(id(x), None)
        if asked is not None:
            decile, y_pred = asked
            wrong, keep = float(y_pred != y), 1 - 1 / MEMORY
            self._n[decile] = self._n[decile] * keep + 1
            self._errors[decile] = self._errors[decile] * keep + wrong
            self._pooled_n = self._pooled_n * (1 - 1 / (4 * MEMORY)) + 1
            self._pooled_errors = self._pooled_errors * (1 - 1 / (4 * MEMORY)) + wrong
        super().learn_one(x, y, **kwargs)


def method(gamma: float) -> str:
    """Register the policy with ``gamma`` as a ``field.py`` method; return its key."""
    key = f"error_proportional[gamma={gamma:g}]"

    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        return ErrorProportional(make_model(s.model, s.seed), s.budget, s.seed, gamma), {}

    METHODS[key] = Method(key, "activestream", build)
    return key


def run(seeds: Sequence[int], methods: Sequence[str]) -> list[tuple[int, Record]]:
    records = []
    for seed, stream, learner, delay in itertools.product(seeds, STREAMS, LEARNERS, DELAYS):
        task = Task(stream, dict(FULL.lengths).get(stream), learner, delay, seed, ())
        for budget, key in itertools.product(BUDGETS, methods):
            records.append((seed, run_one(task, Run(key, budget))))
        print(f"seed {seed} {stream} {learner} delay {delay}", flush=True)
    return records


def report(records: list[tuple[int, Record]]) -> str:
    """Mean gain over random sampling (points) per method × budget × delay: mean over cells per seed,
    then mean and spread over seeds; and the cells more than a point below random."""
    by = {(seed, r.stream, r.learner, r.delay, r.budget, r.method): r for seed, r in records}
    gains: dict[tuple[str, float, int], dict[int, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    cells: dict[tuple[str, str, str, float], list[float]] = collections.defaultdict(list)
    used: dict[tuple[str, float], list[float]] = collections.defaultdict(list)
    for (seed, stream, learner, delay, budget, key), r in by.items():
        if key == "random":
            continue
        gain = (r.accuracy - by[(seed, stream, learner, delay, budget, "random")].accuracy) * 100
        gains[(key, budget, delay)][seed].append(gain)
        cells[(key, stream, learner, budget)].append(gain)
        used[(key, budget)].append(r.labels_fraction * 100)
    lines = [
        "| method | budget | delay | gain over random, mean ± sd over seeds | labels used % |",
        "|---|---|---|---|---|",
    ]
    for (key, budget, delay), per_seed in sorted(gains.items()):
        means = [statistics.fmean(v) for v in per_seed.values()]
        lines.append(
            f"| {key} | {budget:.0%} | {delay} | {statistics.fmean(means):+.2f} ± "
            f"{statistics.pstdev(means):.2f} | {statistics.fmean(used[(key, budget)]):.2f} |"
        )
    lines += [
        "",
        "Stream × learner × budget cells more than 1 point below random (mean over seeds and delays):",
        "",
    ]
    for key in sorted({k[0] for k in cells}):
        bad = sorted(
            (statistics.fmean(v), k) for k, v in cells.items() if k[0] == key and statistics.fmean(v) < -1
        )
        listed = ", ".join(f"{s} × {lrn} at {b:.0%} ({g:+.1f})" for g, (_, s, lrn, b) in bad)
        lines.append(f"- {key}: {len(bad)} of {sum(1 for k in cells if k[0] == key)}: {listed}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    def gammas(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--gammas", default="2,4", help="comma-separated exponents of the error rates")

    args, records, load = records_from_cli(
        __doc__,
        argv,
        lambda args: [*BASELINES, *(method(float(g)) for g in args.gammas.split(","))],
        gammas,
    )
    command = f"python benchmarks/error_proportional.py --seeds {args.seeds} --gammas {args.gammas}"
    write(
        args.out / "error_proportional.md",
        "Error-proportional sampling (tried, not kept)",
        command,
        report(records),
        load,
    )
    return 0


def records_from_cli(
    doc: str,
    argv: Sequence[str] | None,
    methods: Callable[[argparse.Namespace], list[str]],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[argparse.Namespace, list[tuple[int, Record]], float]:
    """A tried policy's command line: run ``methods(args)`` over ``--seeds``, or load records saved earlier.

    Returns the arguments, the records and the 1-minute load average at the start.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3")
    if options is not None:
        options(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--save", type=Path, help="pickle the records here (and report from it with --load)")
    parser.add_argument("--load", help="report from comma-separated files written by --save; run nothing")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    if args.load:
        records = [r for path in args.load.split(",") for r in pickle.loads(Path(path).read_bytes())]
    else:
        records = run([int(s) for s in args.seeds.split(",")], methods(args))
        if args.save:
            args.save.write_bytes(pickle.dumps(records))
    return args, records, load


def write(path: Path, title: str, command: str, body: str, load_at_start: float) -> None:
    """Write and print a tried policy's results page: title, command, tables, the machine it ran on."""
    info = machine_info([load_at_start, os.getloadavg()[0]], git_commit())
    machine = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    text = (
        f"# {title}\n\nGenerated by `{command}`; protocol in the module docstring.\n\n{body}\n\n"
        f"## Machine\n\n| | |\n|---|---|\n{machine}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    fix_string_hashes()
    sys.exit(main())
