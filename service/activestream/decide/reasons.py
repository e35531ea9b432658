"""Why a policy asked or did not: the values ``Verdict.reason`` takes.

They become a metric label, so the set stays small and fixed (see :mod:`activestream.decide.policies`
for what each one means).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BELOW_THRESHOLD", "INFORMATIVE", "OVER_BUDGET", "RANDOM", "REASONS"]

INFORMATIVE: Final = "informative"
RANDOM: Final = "random"
BELOW_THRESHOLD: Final = "below_threshold"
OVER_BUDGET: Final = "over_budget"
#: Every value ``Verdict.reason`` can take (it becomes a metric label, so the set stays small and fixed).
REASONS: Final = frozenset({INFORMATIVE, RANDOM, BELOW_THRESHOLD, OVER_BUDGET})
