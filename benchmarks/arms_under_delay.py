"""Which part of the drift arms makes the service's default lose to random sampling under label delay.

The service's default (``field.py``'s ``activestream service default``: what ``activestream run`` builds,
the default strategy with its learner inside the drift arms of ``activestream.drift.adaptive``) gains more
than the bare learner without delay but falls behind random sampling with labels 2,000 events late
(``results/field_default_seeds.md``). The drift arms have three parts that could cause it: the active
arm (its detector replaces the model by an untrained one), the passive arm (continuous forgetting: a
window of the last ``passive_window`` labels for naive Bayes and trees; for the SGD logistic regression
it is the bare model) and the champion (the served arm, chosen on the unbiased accuracy estimate with
hysteresis, on labels that arrive ``delay`` events late). Each variant below is the service's default
with one of them taken out, built like ``field.py``'s ``_service`` from the service's ``Settings``:

- ``serve=passive`` / ``serve=active``: no champion; one arm always served (both still learn).
- ``no replacement``: the champion between the passive arm and an active arm whose detector never fires
  (ADWIN with ``delta`` = 1e-300; ``Settings`` has no option to turn the detector off, so this one swaps
  the classifier ``learner_from_settings`` built for one with the deaf detector).

The service's drift watch (label-free detector, budget boost, resumption of paused requests) is not part of
the learner ``learner_from_settings`` builds and the boost is off by default, so none of it runs here.

Protocol: ``field.py``'s runner (prequential, every asked label charged, labels ``delay`` events late),
every stream × learner of the field grid, budgets 5 and 10%, delays 0, 500 and 2,000, against random
sampling and ``activestream default`` on the same seed (``error_proportional.py``'s protocol and report,
reused). For every run with arms it also counts, at the end of the stream, the champion switches, the
drifts the active arm reacted to (model replacements) and the share of labels learned while the passive
arm was served. Writes ``results/arms_under_delay.md``::

    PYTHONPATH=service python benchmarks/arms_under_delay.py --seeds 1,2,3

or in pieces (``--seeds 1 --save s1.pkl``, ``--seeds 2,3 --save s23.pkl``), reported together with
``--load s1.pkl,s23.pkl``.
"""

from __future__ import annotations

import collections
import itertools
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from activestream.assembly import learner_from_settings
from activestream.config import Settings
from activestream.drift import DriftAdaptiveClassifier
from error_proportional import BASELINES, records_from_cli, report, write
from field import LEARNERS, METHODS, SERVICE, Method, Record
from label_efficiency import Setting, fix_string_hashes

#: An ADWIN ``delta`` at which the active arm's detector never fires (as in ``adaptive.py``'s example).
DEAF = 1e-300
BARE = "activestream default"
VARIANTS = {
    "service[serve=passive]": ({"serve": "passive"}, False),
    "service[serve=active]": ({"serve": "active"}, False),
    "service[no replacement]": ({}, True),
}


def counted(learner: Any) -> dict[str, Any]:
    """Count the arms' champion switches, drifts and passive-served labels into a dict, as labels arrive."""
    classifier, stats = learner.classifier, {"switches": 0, "drifts": 0, "labels": 0, "passive": 0}
    learn = classifier.learn_one

    def learn_one(x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        stats["passive"] += classifier.serving == "passive"  # the arm served as the label arrives
        learn(x, y, **kwargs)
        stats["labels"] += 1
        stats["switches"], stats["drifts"] = classifier._switches, classifier._active.n_drifts

    classifier.learn_one = learn_one
    return stats


def service(overrides: dict[str, Any], deaf: bool) -> Callable[[Setting], tuple[Any, dict[str, Any]]]:
    def build(s: Setting) -> tuple[Any, dict[str, Any]]:
        settings = Settings(model=s.model, budget=s.budget, seed=s.seed, **overrides)
        learner = learner_from_settings(settings)
        if deaf:
            learner.classifier = DriftAdaptiveClassifier(
                settings.model,
                detector=settings.drift_detector,
                serve=settings.serve,
                seed=settings.seed,
                window=settings.passive_window,
                detector_params={"delta": DEAF},
            )
        return learner, {"strategy": learner.strategy, "arms": counted(learner)}

    return build


METHODS[SERVICE] = Method(SERVICE, "activestream", service({}, False))  # the same learner, counted
for key, (overrides, deaf) in VARIANTS.items():
    METHODS[key] = Method(key, "activestream", service(overrides, deaf))


def arms(records: list[tuple[int, Record]], stream: str = "stagger_recurring") -> str:
    """Mean champion switches, drifts and passive-served share of labels per method × budget × delay, on
    ``stream`` and on the others."""
    by: dict[tuple[str, float, int, bool], list[dict[str, int]]] = collections.defaultdict(list)
    for _, r in records:
        if "arms" in r.info:
            by[(r.method, r.budget, r.delay, r.stream == stream)].append(r.info["arms"])
    lines = [
        f"| method | budget | delay | champion switches: {stream} / other streams | drifts (model replaced): "
        f"{stream} / other streams | labels learned while the passive arm served |",
        "|---|---|---|---|---|---|",
    ]

    def pair(one: list[dict[str, int]], rest: list[dict[str, int]], what: str) -> str:
        return f"{statistics.fmean(a[what] for a in one):.2f} / {statistics.fmean(a[what] for a in rest):.2f}"

    for key, budget, delay, _ in sorted(k for k in by if k[3]):
        one, rest = by[(key, budget, delay, True)], by[(key, budget, delay, False)]
        share = sum(a["passive"] for a in one + rest) / max(sum(a["labels"] for a in one + rest), 1)
        lines.append(
            f"| {key} | {budget:.0%} | {delay} | {pair(one, rest, 'switches')} | "
            f"{pair(one, rest, 'drifts')} | {share:.0%} |"
        )
    return "\n".join(lines)


def versus_bare(records: list[tuple[int, Record]]) -> str:
    """Each method against the bare learner (``activestream default``) per learner × delay, mean over
    streams, budgets and seeds; and the stream × learner × budget cells more than 1 point apart."""
    bare = {(s, r.stream, r.learner, r.delay, r.budget): r.accuracy for s, r in records if r.method == BARE}
    diffs: dict[tuple[str, int, str], list[float]] = collections.defaultdict(list)
    cells: dict[tuple[str, int, str, str, float], list[float]] = collections.defaultdict(list)
    for s, r in records:
        if r.method in (BARE, "random"):
            continue
        d = (r.accuracy - bare[(s, r.stream, r.learner, r.delay, r.budget)]) * 100
        diffs[(r.method, r.delay, r.learner)].append(d)
        cells[(r.method, r.delay, r.stream, r.learner, r.budget)].append(d)
    methods, delays = sorted({k[0] for k in diffs}), sorted({k[1] for k in diffs})
    learners = [lrn for lrn in LEARNERS if any(k[2] == lrn for k in diffs)]
    lines = [f"| method | delay | {' | '.join(learners)} |", "|---|---|" + "---|" * len(learners)]
    for key, delay in itertools.product(methods, delays):
        row = " | ".join(f"{statistics.fmean(diffs[(key, delay, lrn)]):+.2f}" for lrn in learners)
        lines.append(f"| {key} | {delay} | {row} |")
    lines += ["", "Cells more than 1 point from the bare learner (mean over seeds):", ""]
    for key, delay in itertools.product(methods, delays):
        far = sorted(
            ((statistics.fmean(v), k) for k, v in cells.items() if k[:2] == (key, delay)),
            key=lambda t: t[0],
        )
        listed = ", ".join(f"{s} × {lrn} at {b:.0%} ({g:+.1f})" for g, (*_, s, lrn, b) in far if abs(g) > 1)
        lines.append(f"- {key}, delay {delay}: {listed or 'none'}")
    return "\n".join(lines)


def versus_service(records: list[tuple[int, Record]], without: str = "stagger_recurring") -> str:
    """Each method − the service's default per budget × delay, paired on the seed: mean over the cells of a
    seed, then mean ± sd over seeds; on every stream and on all but ``without``."""
    ref = {(s, r.stream, r.learner, r.delay, r.budget): r.accuracy for s, r in records if r.method == SERVICE}
    per: dict[tuple[str, float, int, bool], dict[int, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for s, r in records:
        if r.method in (SERVICE, "random"):
            continue
        d = (r.accuracy - ref[(s, r.stream, r.learner, r.delay, r.budget)]) * 100
        per[(r.method, r.budget, r.delay, True)][s].append(d)
        if r.stream != without:
            per[(r.method, r.budget, r.delay, False)][s].append(d)

    def cell(key: tuple[str, float, int, bool]) -> str:
        means = [statistics.fmean(v) for v in per[key].values()]
        return f"{statistics.fmean(means):+.2f} ± {statistics.pstdev(means):.2f}"

    lines = [
        f"| method | budget | delay | − service default, every stream | − service default, without {without} "
        "|",
        "|---|---|---|---|---|",
    ]
    for key, budget, delay, _ in sorted(k for k in per if k[3]):
        lines.append(
            f"| {key} | {budget:.0%} | {delay} | {cell((key, budget, delay, True))} | "
            f"{cell((key, budget, delay, False))} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args, records, load = records_from_cli(__doc__, argv, lambda _: [*BASELINES, SERVICE, *VARIANTS])
    body = (
        f"Seeds {', '.join(str(s) for s in sorted({s for s, _ in records}))}.\n\n{report(records)}\n\n"
        "Against the service's default (method − activestream service default, points, paired on the seed: "
        f"mean over cells per seed, then mean ± sd over seeds):\n\n{versus_service(records)}\n\n"
        "Against the bare learner (method − activestream default, points; mean over streams, budgets and "
        f"seeds, per learner):\n\n{versus_bare(records)}\n\n"
        "What the arms did, mean per run (per learner × seed; a switch is a change of the served arm, a "
        f"drift a replacement of the active arm's model):\n\n{arms(records)}"
    )
    title = "The drift arms under label delay: which part loses to random sampling"
    seeds = ",".join(str(s) for s in sorted({s for s, _ in records}))  # also when run in pieces (--load)
    command = f"python benchmarks/arms_under_delay.py --seeds {seeds}"
    write(args.out / "arms_under_delay.md", title, command, body, load)
    return 0


if __name__ == "__main__":
    fix_string_hashes()
    sys.exit(main())
