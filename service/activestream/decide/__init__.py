"""Budgets and threshold policies: turn an informativeness score into ask or discard."""

from activestream.decide.base import Policy, Verdict
from activestream.decide.budget import WindowedBudget
from activestream.decide.confidence_split import ConfidenceSplit
from activestream.decide.policies import (
    REASONS,
    BalancedIncrementalQuantileFilter,
    FixedThreshold,
    RandomizedVariableUncertainty,
    SelectiveSampling,
    Split,
    VariableUncertainty,
)
from activestream.decide.registry import POLICIES, make_policy

__all__ = [
    "POLICIES",
    "REASONS",
    "BalancedIncrementalQuantileFilter",
    "ConfidenceSplit",
    "FixedThreshold",
    "Policy",
    "RandomizedVariableUncertainty",
    "SelectiveSampling",
    "Split",
    "VariableUncertainty",
    "Verdict",
    "WindowedBudget",
    "make_policy",
]
