"""Tables, CSV and plots of ``field.py``: pure functions of its records, plus the writers.

The EntropySampler's sweep is turned into one row per budget here (``match_entropy``): for each stream ×
learner × delay and budget, the discount factor whose run used the number of labels closest to it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from field import CEILING, ENTROPY, METHODS, MOA_CEILING, OVER_BUDGET_TOLERANCE, Plan, Record, Run, Task

Key = tuple[str, str, int, float, str]  # stream, learner, delay, budget, method

#: Panels of the learning-curve figure: (stream, learner), at delay 0.
PANELS = (
    ("sea_abrupt", "logreg"),
    ("agrawal_gradual", "hat"),
    ("rbf_drift", "gnb"),
    ("elec", "logreg"),
    ("phishing", "hat"),
    ("image_segments", "logreg"),
)


def match_entropy(records: Sequence[Record], budgets: Sequence[float]) -> list[Record]:
    """The sweep's run closest to each budget, as a row of that budget (``info``: target and gap).

    >>> r = [Record("s", "gnb", 0, 0.0, ENTROPY, "river", 100, k, 0.9, 0.8, 1.0, {"discount_factor": k})
    ...      for k in (3, 8, 30)]
    >>> [(m.budget, m.labels_used) for m in match_entropy(r, (0.05, 0.25))]
    [(0.05, 3), (0.25, 30)]
    """
    sweeps: dict[tuple[str, str, int], list[Record]] = defaultdict(list)
    for r in records:
        if r.method == ENTROPY:
            sweeps[r.stream, r.learner, r.delay].append(r)
    matched = []
    for runs in sweeps.values():
        for budget in budgets:
            best = min(runs, key=lambda r: (abs(r.labels_fraction - budget), r.info["discount_factor"]))
            info = {**best.info, "gap_pp": round((best.labels_fraction - budget) * 100, 2)}
            matched.append(replace(best, budget=budget, info=info))
    return matched


def table_records(records: Sequence[Record], budgets: Sequence[float]) -> dict[Key, Record]:
    """Every row of the tables by (stream, learner, delay, budget, method), the sweep matched."""
    rows = [r for r in records if r.method != ENTROPY] + match_entropy(records, budgets)
    return {(r.stream, r.learner, r.delay, r.budget, r.method): r for r in rows}


def within_budget(r: Record) -> bool:
    return r.labels_fraction <= r.budget * OVER_BUDGET_TOLERANCE


def method_order(rows: dict[Key, Record]) -> list[str]:
    present = {k[4] for k in rows}
    order = [k for k in METHODS if k in present]
    cut = order.index("random") + 1 if "random" in order else len(order)
    return [*order[:cut], ENTROPY, *order[cut:]]


def best_of(rows: dict[Key, Record], stream: str, learner: str, delay: int, budget: float) -> Record | None:
    candidates = [
        r
        for (s, le, d, b, _), r in rows.items()
        if (s, le, d, b) == (stream, learner, delay, budget) and within_budget(r)
    ]
    return max(candidates, key=lambda r: r.accuracy, default=None)


def _cell(r: Record | None, best: Record | None) -> str:
    if r is None:
        return "—"
    text = f"{r.accuracy * 100:.1f} / {r.kappa:.2f} ({r.labels_fraction * 100:.1f})"
    if not within_budget(r):
        return text + " †"
    if best is not None and r.accuracy >= best.accuracy - 1e-12:
        return f"**{text}**"
    return text


def budget_table(
    rows: dict[Key, Record], streams: Sequence[str], learner: str, delay: int, budget: float
) -> list[str]:
    """Rows = methods, columns = streams: accuracy % / kappa (labels used %), best in bold."""
    lines = ["| method | " + " | ".join(streams) + " |", "|" + "---|" * (len(streams) + 1)]
    best = {st: best_of(rows, st, learner, delay, budget) for st in streams}
    for key in method_order(rows):
        cells = [_cell(rows.get((st, learner, delay, budget, key)), best[st]) for st in streams]
        if any(c != "—" for c in cells):
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for key, name in ((CEILING, CEILING), (MOA_CEILING, "MOA's learner, every label")):
        ceiling = [rows.get((st, learner, delay, 1.0, key)) for st in streams]
        if any(ceiling):
            cells = ("—" if c is None else f"*{c.accuracy * 100:.1f} / {c.kappa:.2f}*" for c in ceiling)
            lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    return lines


def summary_table(rows: dict[Key, Record], budget: float) -> list[str]:
    """Per method over every cell it ran at ``budget``: gains over random and over our default there."""
    by_cell: dict[tuple[str, str, int], dict[str, Record]] = defaultdict(dict)
    for (s, le, d, b, m), r in rows.items():
        if b == budget:
            by_cell[s, le, d][m] = r
    lines = [
        "| method | cells | mean accuracy − random sampling (pp) | mean − activestream default (pp) "
        "| best in cells | over budget † | mean labels used (% of events) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in method_order(rows):
        mine = [(cell, runs) for cell, runs in by_cell.items() if key in runs]
        if not mine:
            continue
        # MOA's strategies against MOA's random sampling (same MOA learner); the rest against ours.
        rnd = MOA_CEILING if key.startswith("moa.") and key != MOA_CEILING else "random"
        vs_random = [runs[key].accuracy - runs[rnd].accuracy for _, runs in mine if rnd in runs]
        default = "activestream default"
        vs_default = [runs[key].accuracy - runs[default].accuracy for _, runs in mine if default in runs]
        best = sum(
            1 for cell, runs in mine if (b := best_of(rows, *cell, budget)) is not None and b.method == key
        )
        over = sum(not within_budget(runs[key]) for _, runs in mine)
        labels = statistics.fmean(runs[key].labels_fraction for _, runs in mine) * 100
        lines.append(
            f"| {key} | {len(mine)} | {_mean_pp(vs_random)} | {_mean_pp(vs_default)} | {best} | {over} "
            f"| {labels:.2f} |"
        )
    return lines


def _mean_pp(values: list[float]) -> str:
    return f"{statistics.fmean(values) * 100:+.2f}" if values else "—"


def best_per_stream(
    rows: dict[Key, Record],
    streams: Sequence[str],
    learners: Sequence[str],
    delays: Sequence[int],
    budget: float,
) -> list[str]:
    cols = [(le, d) for le in learners for d in delays]
    lines = [
        "| stream | " + " | ".join(f"{le}, delay {d}" for le, d in cols) + " |",
        "|" + "---|" * (len(cols) + 1),
    ]
    for st in streams:
        cells = []
        for le, d in cols:
            b = best_of(rows, st, le, d, budget)
            cells.append("—" if b is None else f"{b.method} ({b.accuracy * 100:.1f})")
        lines.append(f"| {st} | " + " | ".join(cells) + " |")
    return lines


def cost_table(records: Sequence[Record], learners: Sequence[str]) -> list[str]:
    """µs per event (predict + decide + learn, wall clock) by method and learner, 2-class streams."""
    us: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r.stream != "image_segments":
            us[r.method, r.learner].append(r.us_per_event)
    methods = [m for m in [*METHODS, ENTROPY, CEILING] if any((m, le) in us for le in learners)]
    lines = ["| method | " + " | ".join(learners) + " |", "|" + "---|" * (len(learners) + 1)]
    for m in methods:
        cells = [f"{statistics.median(us[m, le]):,.0f}" if (m, le) in us else "—" for le in learners]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def machine_info(load: Sequence[float], commit: str, load_text: str | None = None) -> dict[str, str]:
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("river", "numpy", "scikit-learn", "scikit-activeml", "capymoa", "JPype1"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
        versions["java"] = java.splitlines()[0] if java else "unknown"
    except (OSError, subprocess.SubprocessError):
        versions["java"] = "not found"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "1-min load average during the run (shared machine; mean / max)": (
            load_text or (f"{statistics.fmean(load):.1f} / {max(load):.1f}" if load else "n/a")
        ),
        "python": platform.python_version(),
        **versions,
        "platform": platform.platform(),
        "commit": commit,
    }


def _restrictions(records: Sequence[Record], plan: Plan) -> list[str]:
    """The methods that ran on less than the full product, and where they ran (from the records)."""
    full = {
        (s, le, d, b) for s in plan.lengths for le in plan.learners for d in plan.delays for b in plan.budgets
    }
    cells: dict[str, set[tuple[str, str, int, float]]] = defaultdict(set)
    for r in records:
        if r.method in METHODS and r.budget in plan.budgets:
            cells[r.method].add((r.stream, r.learner, r.delay, r.budget))
    groups: dict[Any, list[str]] = defaultdict(list)
    for key, got in cells.items():
        expected = {c for c in full if c[1] in METHODS[key].learners}
        if got != expected:
            grid = tuple(tuple(sorted({c[i] for c in got}, key=str)) for i in range(4))
            groups[grid, len(got)].append(key)
    lines = []
    for ((streams, learners, delays, budgets), n), keys in groups.items():
        where = "every stream" if set(plan.lengths) <= set(streams) else ", ".join(streams)
        lines.append(
            f"- {', '.join(f'`{k}`' for k in keys)}: {where}; learner {', '.join(learners)}; budget "
            f"{', '.join(f'{b:.0%}' for b in budgets)}; delay {', '.join(map(str, delays))} only ({n} cells)."
        )
    return lines


def report(
    records: Sequence[Record],
    skipped: Sequence[tuple[Task, Run]],
    plan: Plan,
    args: argparse.Namespace,
    wall: float,
    load: Sequence[float],
) -> str:
    rows = table_records(records, plan.budgets)
    streams = [s for s in plan.lengths if any(k[0] == s for k in rows)]
    n_of = {r.stream: r.n_events for r in records}
    info = machine_info(load, getattr(args, "commit", "unknown"), getattr(args, "load", None))
    mode = "quick" if args.quick else "full"
    lines = [
        f"# Against the field ({mode} run)",
        "",
        f"Generated by `python benchmarks/field.py{' --quick' if args.quick else ''}` "
        f"(seed {args.seed}, {args.jobs} worker processes): wall time {wall / 60:.1f} min, "
        f"{len(records)} prequential runs." + (f" {args.note}" if getattr(args, "note", "") else ""),
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
        "Streams (events): " + ", ".join(f"{st} {n_of.get(st, 0):,}" for st in streams) + ". One seed.",
        "",
        "## Protocol",
        "",
        "Prequential over every event: the model is tested on the event, the method decides, and only "
        "asked labels are learned, `delay` events later; every asked label counts. Each method drives a "
        "fresh copy of the same river base learner (`activestream.models`: `logreg` scaled logistic "
        "regression — one-vs-rest on the 7-class image_segments —, `hat` Hoeffding adaptive tree, "
        "`gnb` Gaussian naive Bayes). Exceptions, by necessity: MOA's `ALUncertainty` runs on MOA's own "
        "learners (`bayes.NaiveBayes` for gnb, `trees.HoeffdingAdaptiveTree -g 50` for hat; MOA has no "
        "logistic regression, so no MOA rows for logreg), and it decides inside `trainOnInstance`, with "
        "the label in hand: with a delay it decides when the label arrives, on a model that has seen "
        "`delay` more events than ours when they decide.",
        "",
        f"Cells: accuracy % / Cohen's kappa (labels used, % of events). Bold: the best accuracy among "
        f"methods within {OVER_BUDGET_TOLERANCE:.0%} of the budget; † marks a method over that (it cannot "
        "be best). The last rows of each table are the fully supervised ceilings (every label): the "
        "river learner's, and for hat and gnb MOA's learner's (`moa.ALRandom` at 100%) — MOA's rows "
        "compare with `moa.ALRandom` and that ceiling, ours with `random` and the river one.",
        "",
        f"river's `EntropySampler` has no budget: its `discount_factor` was swept over "
        f"{', '.join(f'{d:g}' for d in plan.entropy_discounts)} once per stream × learner × delay, and "
        "each budget's cell shows the run whose labels used were closest to the budget — an after-the-fact "
        "choice, in its favour; how close it got is in the EntropySampler section.",
        "",
        "Sub-grids (the full product of streams × budgets × learners × delays for every other method):",
        "",
        *_restrictions(records, plan),
        "",
    ]
    if skipped:
        lines += [
            f"**{len(skipped)} runs were not started before the deadline** ({args.deadline} min) and are "
            "missing from the tables:",
            "",
            *sorted(
                {
                    f"- {t.stream} {t.learner} delay {t.delay}: {r.method} "
                    f"{'sweep' if r.method == ENTROPY else f'{r.budget:.0%}'}"
                    for t, r in skipped
                }
            ),
            "",
        ]
    lines += ["## Summary per budget", ""]
    lines.append(
        "Over every cell (stream × learner × delay) a method ran at the budget: its mean accuracy minus "
        "random sampling's on the same learner (`random` on the river learner; `moa.ALRandom` on MOA's "
        "for MOA's strategies; `moa.ALRandom`'s own row is against river's `random`: the learners' "
        "difference) and minus activestream's default in the same cells, and in how many cells it "
        "was the best of all methods there (methods on a sub-grid meet fewer rivals' cells: compare them "
        "in the logreg, delay 0 tables)."
    )
    lines.append("")
    for budget in plan.budgets:
        lines += [f"### Budget {budget:.0%}", "", *summary_table(rows, budget), ""]
    lines += ["## Best method per stream", ""]
    for budget in plan.budgets:
        lines += [f"### Budget {budget:.0%}", ""]
        lines += best_per_stream(rows, streams, plan.learners, plan.delays, budget)
        lines.append("")
    lines += ["## Tables", ""]
    for budget in plan.budgets:
        lines += [f"### Budget {budget:.0%}", ""]
        for delay in plan.delays:
            for learner in plan.learners:
                lines += [f"#### {learner}, delay {delay}, budget {budget:.0%}", ""]
                lines += budget_table(rows, streams, learner, delay, budget)
                lines.append("")
    sweeps = [r for r in rows.values() if r.method == ENTROPY]
    if sweeps:
        lines += [
            "## river EntropySampler: how close the sweep came to each budget",
            "",
            "| budget | cells | labels used: mean | min | max | within tolerance |",
            "|---|---|---|---|---|---|",
        ]
        for budget in plan.budgets:
            group = [r.labels_fraction * 100 for r in sweeps if r.budget == budget]
            if group:
                ok = sum(r.budget == budget and within_budget(r) for r in sweeps)
                lines.append(
                    f"| {budget:.0%} | {len(group)} | {statistics.fmean(group):.2f}% | {min(group):.2f}% "
                    f"| {max(group):.2f}% | {ok}/{len(group)} |"
                )
        lines.append("")
    lines += [
        "## Cost",
        "",
        "Median µs per event of a run (test + decide + learn, wall clock on the shared machine, so "
        "inflated by its load; 2-class streams), by base learner.",
        "",
        *cost_table(records, plan.learners),
        "",
    ]
    return "\n".join(lines)


def write_csv(records: Sequence[Record], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "stream",
                "learner",
                "delay",
                "budget",
                "method",
                "family",
                "n_events",
                "labels_used",
                "labels_fraction",
                "accuracy",
                "kappa",
                "us_per_event",
                "info",
            ]
        )
        for r in sorted(records, key=lambda r: (r.stream, r.learner, r.delay, r.budget, r.method)):
            writer.writerow(
                [
                    r.stream,
                    r.learner,
                    r.delay,
                    r.budget,
                    r.method,
                    r.family,
                    r.n_events,
                    r.labels_used,
                    f"{r.labels_fraction:.5f}",
                    f"{r.accuracy:.5f}",
                    f"{r.kappa:.5f}",
                    f"{r.us_per_event:.1f}",
                    ";".join(f"{k}={v}" for k, v in r.info.items()),
                ]
            )


def plot(records: Sequence[Record], plan: Plan, path: Path) -> None:
    """Accuracy against labels used: each method's runs over the budgets, the sweep, the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s, le) for s, le in PANELS if any(r.stream == s and r.learner == le for r in records)]
    if not panels:
        panels = sorted({(r.stream, r.learner) for r in records})[:6]
    cols = min(3, len(panels))
    fig, axes = plt.subplots(
        (len(panels) + cols - 1) // cols,
        cols,
        figsize=(5.2 * cols, 4.2 * ((len(panels) + 2) // 3)),
        squeeze=False,
    )
    styles = {
        "activestream default": ("C0", "o", "-"),
        "random": ("C7", "s", "--"),
        ENTROPY: ("C1", ".", ""),  # sweep points: nearby label counts, unrelated accuracies
        "skal.VariableUncertainty": ("C2", "^", "-."),
        "skal.StreamProbabilisticAL": ("C4", "*", ""),
        "moa.VarUncertainty": ("C3", "v", "-."),
    }
    for ax, (stream, learner) in zip(axes.flat, panels, strict=False):
        mine = [r for r in records if r.stream == stream and r.learner == learner and r.delay == 0]
        ours = defaultdict(list)
        for r in mine:
            if r.family == "activestream" and r.method != "activestream default":
                ours[r.method].append(r.accuracy)
        best_ours = max(ours, key=lambda m: statistics.fmean(ours[m]), default=None)
        shown = {**styles, **({best_ours: ("C9", "D", "-")} if best_ours else {})}
        for method, (color, marker, line) in shown.items():
            runs = sorted((r for r in mine if r.method == method), key=lambda r: r.labels_fraction)
            if not runs:
                continue
            name = method.replace("activestream ", "ours: ")
            ax.plot(
                [r.labels_fraction * 100 for r in runs],
                [r.accuracy * 100 for r in runs],
                color=color,
                marker=marker,
                linestyle=line or "none",
                label=name if method != ENTROPY else f"{method} (sweep)",
            )
        ceiling = next((r for r in mine if r.method == CEILING), None)
        if ceiling:
            ax.axhline(ceiling.accuracy * 100, color="k", linewidth=0.8, linestyle=":", label="every label")
        ax.set_xscale("log")
        ax.set_title(f"{stream}, {learner}, delay 0", fontsize=10)
        ax.set_xlabel("labels used (% of events, log scale)")
        ax.set_ylabel("prequential accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    records: Sequence[Record],
    skipped: Sequence[tuple[Task, Run]],
    plan: Plan,
    args: argparse.Namespace,
    wall: float,
    load: Sequence[float],
    out: Path,
) -> None:
    name = "field_quick" if args.quick else "field"
    text = report(records, skipped, plan, args, wall, load)
    (out / f"{name}.md").write_text(text)
    write_csv(records, out / f"{name}.csv")
    plot(records, plan, out / f"{name}_curves.png")
    print(text.split("## Tables")[0])
