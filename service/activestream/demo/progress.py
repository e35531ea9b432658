"""The demo's one-line live progress, rendered from the service's metrics.

>>> snapshot = ProgressSnapshot(events=1200, total=45312, asked=118, learned=97, accuracy=0.81,
...                             threshold=0.42, pending=21)
>>> print(render_progress(snapshot, width=20))
[....................]   1,200/45,312 events | asked 118 (9.8%) | learned 97 | pending 21 | acc 81.0% | ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ProgressSnapshot", "render_progress"]


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    events: int
    total: int
    asked: int
    learned: int
    accuracy: float
    threshold: float
    pending: int


def _percent(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{value:.1%}"


def render_progress(s: ProgressSnapshot, width: int = 30) -> str:
    """A progress bar and the loop's key figures on one line."""
    done = min(1.0, s.events / s.total) if s.total else 0.0
    filled = int(done * width)
    bar = "#" * filled + "." * (width - filled)
    asked_rate = s.asked / s.events if s.events else 0.0
    threshold = "n/a" if math.isnan(s.threshold) else f"{s.threshold:.3f}"
    return (
        f"[{bar}] {s.events:>7,}/{s.total:,} events | asked {s.asked:,} ({asked_rate:.1%}) | "
        f"learned {s.learned:,} | pending {s.pending:,} | acc {_percent(s.accuracy)} | thr {threshold}"
    )
