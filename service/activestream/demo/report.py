"""The demo's closing summary: a table and a learning-curve PNG.

>>> active = SummaryRow("activestream (in-process)", 45312, 4531, 0.842, 0.678)
>>> random = SummaryRow("random sampling (in-process)", 45312, 4530, 0.801, 0.590)
>>> print(summary_table([active, random], budget=0.1, baseline=random))
| run                          |  events |     labels used |  budget | accuracy |  kappa | vs random |
|------------------------------|--------:|----------------:|--------:|---------:|-------:|----------:|
| activestream (in-process)    |  45,312 |   4,531 (10.0%) |   10.0% |    84.2% |  0.678 |  +4.1 pts |
| random sampling (in-process) |  45,312 |   4,530 (10.0%) |   10.0% |    80.1% |  0.590 |  baseline |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Curve", "SummaryRow", "accuracy_gain", "plot_learning_curves", "summary_table", "verdict"]


@dataclass(frozen=True, slots=True)
class SummaryRow:
    run: str
    events: int
    labels_used: int
    accuracy: float
    kappa: float


@dataclass(frozen=True, slots=True)
class Curve:
    """Window accuracy after each of ``events``."""

    name: str
    events: Sequence[int]
    accuracy: Sequence[float]


def accuracy_gain(row: SummaryRow, baseline: SummaryRow) -> str:
    """``row``'s accuracy minus ``baseline``'s, in percentage points.

    >>> accuracy_gain(SummaryRow("a", 10, 1, 0.75, 0.5), SummaryRow("b", 10, 1, 0.7, 0.4))
    '+5.0 pts'
    >>> accuracy_gain(SummaryRow("a", 10, 1, 0.69, 0.5), SummaryRow("b", 10, 1, 0.7, 0.4))
    '-1.0 pts'
    """
    return f"{100 * (row.accuracy - baseline.accuracy):+.1f} pts"


def verdict(active: SummaryRow, random: SummaryRow, label_delay: int) -> str:
    """One line saying whether activestream beat random sampling, so a loss is never left to the table.

    >>> verdict(SummaryRow("a", 10, 1, 0.7937, 0.5), SummaryRow("r", 10, 1, 0.7879, 0.4), 0)
    'activestream is ahead of random sampling by 0.58 points (same stream, budget and label delay).'
    >>> print(verdict(SummaryRow("a", 10, 1, 0.7495, 0.5), SummaryRow("r", 10, 1, 0.7537, 0.4), 500))
    activestream is behind random sampling by 0.42 points (same stream, ... With labels 500 events late ...
    """
    gain = 100 * (active.accuracy - random.accuracy)
    same = "(same stream, budget and label delay)"
    if gain > 0:
        return f"activestream is ahead of random sampling by {gain:.2f} points {same}."
    if gain == 0:
        line = f"activestream is level with random sampling {same}."
    else:
        line = f"activestream is behind random sampling by {-gain:.2f} points {same}."
    if label_delay:
        line += (
            f" With labels {label_delay:,} events late uncertainty sampling can lose its lead: see"
            ' docs/strategies.md, "Why the demo loses" (Electricity, over seeds and delays).'
        )
    return line


def summary_table(rows: Sequence[SummaryRow], budget: float, baseline: SummaryRow | None = None) -> str:
    """A markdown table: events, labels used against the budget, accuracy and kappa per run.

    With a ``baseline`` (one of ``rows``), a last column gives each run's accuracy gain over it, in points.
    """
    width = max(len("run"), *(len(r.run) for r in rows))
    header = f"| {'run':<{width}} |  events |     labels used |  budget | accuracy |  kappa |"
    rule = f"|{'-' * (width + 2)}|--------:|----------------:|--------:|---------:|-------:|"
    gain_title = "vs random" if baseline is not None and "random" in baseline.run else "vs baseline"
    gain_width = len(gain_title)
    if baseline is not None:
        header += f" {gain_title} |"
        rule += f"{'-' * (gain_width + 1)}:|"
    lines = [header, rule]
    for r in rows:
        used = f"{r.labels_used:,} ({r.labels_used / r.events:.1%})" if r.events else "0"
        line = (
            f"| {r.run:<{width}} | {r.events:>7,} | {used:>15} | {budget:>7.1%} | {r.accuracy:>8.1%} "
            f"| {r.kappa:>6.3f} |"
        )
        if baseline is not None:
            gain = "baseline" if r is baseline else accuracy_gain(r, baseline)
            line += f" {gain:>{gain_width}} |"
        lines.append(line)
    return "\n".join(lines)


def plot_learning_curves(
    curves: Sequence[Curve],
    path: Path,
    title: str,
    drifts: Sequence[int] = (),
    window: int | None = None,
) -> Path:
    """Window accuracy over the stream, one line per run, the known drift positions dashed; saved as a PNG.

    ``window`` (events) names the moving accuracy's window on the y axis; with no ``drifts`` the legend
    says none are known.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for curve in curves:
        ax.plot(curve.events, curve.accuracy, label=curve.name, linewidth=1.4)
    for i, position in enumerate(drifts):
        label = "known drift" if i == 0 else None
        ax.axvline(position, color="grey", linestyle="--", linewidth=0.8, label=label)
    if not drifts:
        ax.plot([], [], " ", label="no known drift positions")
    ax.set_xlabel("events")
    ylabel = "accuracy (sliding window)" if window is None else f"accuracy over the last {window:,} events"
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
