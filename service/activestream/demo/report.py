"""The demo's closing summary: a table and a learning-curve PNG.

>>> rows = [SummaryRow("activestream service", 45312, 4531, 0.842, 0.678),
...         SummaryRow("random sampling (in-process)", 45312, 4530, 0.801, 0.590)]
>>> print(summary_table(rows, budget=0.1))
| run                          |  events |     labels used |  budget | accuracy |  kappa |
|------------------------------|--------:|----------------:|--------:|---------:|-------:|
| activestream service         |  45,312 |   4,531 (10.0%) |   10.0% |   84.2% |  0.678 |
| random sampling (in-process) |  45,312 |   4,530 (10.0%) |   10.0% |   80.1% |  0.590 |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Curve", "SummaryRow", "plot_learning_curves", "summary_table"]


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


def summary_table(rows: Sequence[SummaryRow], budget: float) -> str:
    """A markdown table: events, labels used against the budget, accuracy and kappa per run."""
    width = max(len("run"), *(len(r.run) for r in rows))
    lines = [
        f"| {'run':<{width}} |  events |     labels used |  budget | accuracy |  kappa |",
        f"|{'-' * (width + 2)}|--------:|----------------:|--------:|---------:|-------:|",
    ]
    for r in rows:
        used = f"{r.labels_used:,} ({r.labels_used / r.events:.1%})" if r.events else "0"
        lines.append(
            f"| {r.run:<{width}} | {r.events:>7,} | {used:>15} | {budget:>7.1%} | {r.accuracy:>7.1%} "
            f"| {r.kappa:>6.3f} |"
        )
    return "\n".join(lines)


def plot_learning_curves(curves: Sequence[Curve], path: Path, title: str, drifts: Sequence[int] = ()) -> Path:
    """Window accuracy over the stream, one line per run, drift points dashed; saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for curve in curves:
        ax.plot(curve.events, curve.accuracy, label=curve.name, linewidth=1.4)
    for position in drifts:
        ax.axvline(position, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("events")
    ax.set_ylabel("accuracy (sliding window)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
