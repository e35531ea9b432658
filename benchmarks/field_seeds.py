"""Against the field over several seeds: how much of a method's gain over random sampling is luck.

``field.py`` runs one seed; on streams of 1,250–8,000 events a budget of 1% is 12–80 labels, and random
sampling's coin flips are the same draws in every cell of a seed (same seed, same sequence), so one
seed's over- or under-spend moves all its cells together. This module reads the records of several
seeds (``field.py --save`` journals or ``field.csv`` files) and reports, per method × budget × delay,
the mean over seeds of the mean gain over random sampling, its spread over seeds, wins and losses over
cells × seeds, and the labels used::

    python benchmarks/field_seeds.py --seeds 1=benchmarks/results/field.csv 2=s2.pkl 3=s3.pkl \\
        --out benchmarks/results
"""

from __future__ import annotations

import argparse
import csv
import pickle
import statistics
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from field import (
    BUDGETS,
    CEILING,
    DELAYS,
    ENTROPY,
    LEARNERS,
    METHODS,
    MOA_CEILING,
    RESULTS,
    STREAMS,
    Record,
    git_commit,
)
from field_report import machine_info
from label_efficiency import fix_string_hashes

#: Whole-grid cells of a method, by seed: (stream, learner, delay, budget) -> record.
Cells = dict[tuple[str, str, int, float], Record]


def ordered(methods: set[str]) -> list[str]:
    """``methods`` in the order of ``METHODS``, then the configurations an experiment added, by name.

    >>> ordered({"activestream margin/confidence_split[v=0.2]", "random", "activestream default"})
    ['activestream default', 'random', 'activestream margin/confidence_split[v=0.2]']
    """
    return [m for m in METHODS if m in methods] + sorted(methods - set(METHODS))


def baseline_of(method: str) -> str:
    """The random sampling ``method`` is measured against: MOA's own for MOA's strategies.

    >>> baseline_of("activestream default"), baseline_of("moa.VarUncertainty"), baseline_of("moa.ALRandom")
    ('random', 'moa.ALRandom', 'random')
    """
    return MOA_CEILING if method.startswith("moa.") and method != MOA_CEILING else "random"


@dataclass(frozen=True)
class SeedRow:
    """One method at one budget and delay (``None``: both delays) over every seed it ran."""

    method: str
    budget: float
    delay: int | None
    seed_means: tuple[float, ...]  # per seed: mean accuracy − its baseline's over the cells (fraction)
    cells: int  # cells × seeds compared
    wins: int
    losses: int
    labels: float  # mean labels used, fraction of events
    baseline_labels: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seed_means)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.seed_means) if len(self.seed_means) > 1 else 0.0


def by_method(records: Sequence[Record]) -> dict[str, Cells]:
    """A seed's budgeted runs by method and cell (the ceilings and the EntropySampler sweep left out)."""
    out: dict[str, Cells] = defaultdict(dict)
    for r in records:
        if r.method in (ENTROPY, CEILING) or r.budget >= 1.0:
            continue
        out[r.method][r.stream, r.learner, r.delay, r.budget] = r
    return out


def seed_rows(
    seeds: Mapping[int, Sequence[Record]], budgets: Sequence[float] = BUDGETS, delays: Sequence[int] = DELAYS
) -> list[SeedRow]:
    """Per method × budget × delay (and both delays, if it ran at both), the gain over its baseline seed
    by seed.

    Only cells where the method and its baseline both ran count; a seed without such cells is left out.

    >>> def rec(method, stream, acc, labels):
    ...     return Record(stream, "gnb", 0, 0.1, method, "x", 100, labels, acc, 0.0, 1.0)
    >>> def seed(random_accs, random_labels, our_accs):
    ...     return [rec("random", s, a, random_labels) for s, a in zip("ab", random_accs)] + [
    ...         rec("activestream default", s, a, 10) for s, a in zip("ab", our_accs)]
    >>> seeds = {1: seed((0.80, 0.70), 12, (0.83, 0.69)), 2: seed((0.84, 0.70), 8, (0.83, 0.70))}
    >>> rows = seed_rows(seeds, (0.1,), (0,))
    >>> row = next(r for r in rows if r.method == "activestream default" and r.delay == 0)
    >>> [round(m * 100, 2) for m in row.seed_means], row.cells, row.wins, row.losses
    ([1.0, -0.5], 4, 1, 2)
    >>> round(row.mean * 100, 2), round(row.labels, 3), round(row.baseline_labels, 3)
    (0.25, 0.1, 0.1)
    """
    per_seed = {seed: by_method(records) for seed, records in seeds.items()}
    methods = ordered({m for runs in per_seed.values() for m in runs})
    rows = []
    for method in methods:
        base = baseline_of(method)
        if method == base:
            continue
        for budget in budgets:
            for delay in (*delays, None):
                pairs: dict[int, list[tuple[Record, Record]]] = {}
                for seed, runs in per_seed.items():
                    mine, theirs = runs.get(method, {}), runs.get(base, {})
                    found = [
                        (r, theirs[cell])
                        for cell, r in mine.items()
                        if cell[3] == budget and (delay is None or cell[2] == delay) and cell in theirs
                    ]
                    if found:
                        pairs[seed] = found
                if not pairs:
                    continue
                flat = [p for ps in pairs.values() for p in ps]
                if delay is None and len({r.delay for r, _ in flat}) < 2:
                    continue  # ran at one delay: its row is that delay's
                diffs = [r.accuracy - b.accuracy for r, b in flat]
                rows.append(
                    SeedRow(
                        method,
                        budget,
                        delay,
                        tuple(
                            statistics.fmean(r.accuracy - b.accuracy for r, b in ps) for ps in pairs.values()
                        ),
                        len(flat),
                        sum(d > 0 for d in diffs),
                        sum(d < 0 for d in diffs),
                        statistics.fmean(r.labels_fraction for r, _ in flat),
                        statistics.fmean(b.labels_fraction for _, b in flat),
                    )
                )
    return rows


def stream_gains(
    seeds: Mapping[int, Sequence[Record]], method: str, budget: float, learner: str | None = None
) -> dict[str, tuple[float, float, float]]:
    """Per stream: ``method``'s mean gain over its baseline (over learners — or ``learner`` only — ×
    delays × seeds), and the two mean label fractions: where a method loses, and whether it spent less.

    >>> r = lambda m, acc, n: Record("s", "gnb", 0, 0.1, m, "x", 100, n, acc, 0.0, 1.0)
    >>> seeds = {1: [r("random", 0.8, 12), r("activestream default", 0.9, 10)]}
    >>> stream_gains(seeds, "activestream default", 0.1)
    {'s': (0.09999999999999998, 0.1, 0.12)}
    >>> stream_gains(seeds, "activestream default", 0.1, learner="hat")
    {}
    """
    got: dict[str, list[tuple[Record, Record]]] = defaultdict(list)
    base = baseline_of(method)
    for records in seeds.values():
        runs = by_method(records)
        mine, theirs = runs.get(method, {}), runs.get(base, {})
        for cell, r in mine.items():
            if cell[3] == budget and cell in theirs and learner in (None, cell[1]):
                got[cell[0]].append((r, theirs[cell]))
    return {
        stream: (
            statistics.fmean(r.accuracy - b.accuracy for r, b in ps),
            statistics.fmean(r.labels_fraction for r, _ in ps),
            statistics.fmean(b.labels_fraction for _, b in ps),
        )
        for stream, ps in got.items()
    }


def read_records(path: Path) -> list[Record]:
    """Records from a ``--save`` journal (pickles appended) or a ``field.csv`` (no curves)."""
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return [
                Record(
                    row["stream"],
                    row["learner"],
                    int(row["delay"]),
                    float(row["budget"]),
                    row["method"],
                    row["family"],
                    int(row["n_events"]),
                    int(row["labels_used"]),
                    float(row["accuracy"]),
                    float(row["kappa"]),
                    float(row["us_per_event"]) * int(row["n_events"]) / 1e6,
                )
                for row in csv.DictReader(f)
            ]
    records: list[Record] = []
    with open(path, "rb") as f:
        while True:
            try:
                records += pickle.load(f)
            except EOFError:
                return records


def _pp(x: float) -> str:
    return f"{x * 100:+.2f}"


def table(rows: Sequence[SeedRow], budget: float) -> list[str]:
    lines = [
        "| method | delay | seeds | mean − random (pp) | per-seed min … max | sd over seeds "
        "| wins / losses (cells × seeds) | labels used (%) | random's labels (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.budget != budget:
            continue
        delay = "both" if r.delay is None else str(r.delay)
        lines.append(
            f"| {r.method} | {delay} | {len(r.seed_means)} | {_pp(r.mean)} | {_pp(min(r.seed_means))} … "
            f"{_pp(max(r.seed_means))} | {r.sd * 100:.2f} | {r.wins} / {r.losses} of {r.cells} "
            f"| {r.labels * 100:.2f} | {r.baseline_labels * 100:.2f} |"
        )
    return lines


def report(
    seeds: Mapping[int, Sequence[Record]], sources: Mapping[int, Sequence[Path]], args: argparse.Namespace
) -> str:
    every = seed_rows(seeds)
    rows = [r for r in every if len(r.seed_means) > 1]  # one seed has no spread: field.md has those
    single = ordered({r.method for r in every} - {r.method for r in rows})
    info = machine_info([], git_commit(), args.load)
    sources_text = "; ".join(f"seed {s}: {', '.join(f'`{p.name}`' for p in ps)}" for s, ps in sources.items())
    lines = [
        "# Against the field over seeds",
        "",
        f"Generated by `python benchmarks/field_seeds.py --seeds {' '.join(args.seeds)}` "
        f"from {sources_text}.",
        "",
        args.note,
        "",
        "Machine (of the aggregation; the runs' load is above): "
        + "; ".join(f"{k} {v}" for k, v in info.items())
        + ".",
        "",
        "Per method × budget × delay: over the cells (stream × learner) where the method and its random "
        "sampling both ran, the mean accuracy difference of each seed; the table gives the mean of those "
        "per-seed means, their min … max and standard deviation over seeds, in how many cells × seeds the "
        "method was ahead / behind, and the mean labels used by both. Random sampling is `random` on the "
        "river learner; for MOA's strategies it is `moa.ALRandom` on MOA's learner (hat and gnb only); "
        "`moa.ALRandom`'s own row is against river's `random` (the learners' difference). Random sampling "
        "draws the same coin flips in every cell of a seed, so its spend moves with the seed, not the cell.",
    ]
    if single:
        lines += ["", "Run on one seed only, left out here (see field.md): " + ", ".join(single) + "."]
    for budget in BUDGETS:
        lines += ["", f"## Budget {budget:.0%}", "", *table(rows, budget)]
    lines += [
        "",
        "## Per stream and learner (both delays, every seed)",
        "",
        "Mean accuracy − random (pp), and labels used % (method / random); `all`: every learner.",
    ]
    for method in ("activestream default", "activestream least_confidence/selective_sampling"):
        if not any(r.method == method for r in rows):
            continue
        learners = (None, *LEARNERS)
        gains = {(b, le): stream_gains(seeds, method, b, le) for b in BUDGETS for le in learners}
        streams = [s for s in STREAMS if any(s in g for g in gains.values())]
        header = "| stream | learner | " + " | ".join(f"{b:.0%}" for b in BUDGETS) + " |"
        lines += ["", f"### {method}", "", header, "|" + "---|" * (len(BUDGETS) + 2)]
        for s in streams:
            for le in learners:
                cells = []
                for b in BUDGETS:
                    g = gains[b, le].get(s)
                    cells.append("—" if g is None else f"{_pp(g[0])} ({g[1] * 100:.2f} / {g[2] * 100:.2f})")
                lines.append(f"| {s} | {le or 'all'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[SeedRow], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["method", "budget", "delay", "seeds", "mean_pp", "min_pp", "max_pp", "sd_pp", "cells", "wins",
             "losses", "labels_fraction", "baseline_labels_fraction", "seed_means_pp"]
        )  # fmt: skip
        for r in rows:
            writer.writerow(
                [
                    r.method,
                    r.budget,
                    "both" if r.delay is None else r.delay,
                    len(r.seed_means),
                    f"{r.mean * 100:.3f}",
                    f"{min(r.seed_means) * 100:.3f}",
                    f"{max(r.seed_means) * 100:.3f}",
                    f"{r.sd * 100:.3f}",
                    r.cells,
                    r.wins,
                    r.losses,
                    f"{r.labels:.5f}",
                    f"{r.baseline_labels:.5f}",
                    ";".join(f"{m * 100:.3f}" for m in r.seed_means),
                ]
            )


def parse_seeds(specs: Sequence[str]) -> dict[int, list[Path]]:
    """``SEED=PATH[,PATH...]`` arguments, a seed may repeat.

    >>> parse_seeds(["1=a.csv", "2=b.pkl,c.pkl", "2=d.pkl"])
    {1: [PosixPath('a.csv')], 2: [PosixPath('b.pkl'), PosixPath('c.pkl'), PosixPath('d.pkl')]}
    """
    out: dict[int, list[Path]] = defaultdict(list)
    for spec in specs:
        seed, sep, paths = spec.partition("=")
        if not sep or not seed.strip().isdigit() or not paths:
            raise SystemExit(f"--seeds wants SEED=PATH[,PATH...], got {spec!r}")
        out[int(seed)] += [Path(p) for p in paths.split(",")]
    return dict(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", nargs="+", required=True, help="SEED=PATH[,PATH...]: --save journals or field.csv files"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument("--note", default="", help="how the runs were made (text)")
    parser.add_argument("--load", default=None, help="the runs' load averages (text)")
    args = parser.parse_args(argv)
    sources = parse_seeds(args.seeds)
    seeds = {s: [r for p in paths for r in read_records(p)] for s, paths in sorted(sources.items())}
    args.out.mkdir(parents=True, exist_ok=True)
    text = report(seeds, sources, args)
    (args.out / "field_seeds.md").write_text(text)
    write_csv(seed_rows(seeds), args.out / "field_seeds.csv")
    print(text)
    return 0


if __name__ == "__main__":
    fix_string_hashes()
    sys.exit(main())
