"""Threshold policies: ask for a label when the score is high enough and the budget has room.

Every policy keeps a :class:`~activestream.decide.budget.WindowedBudget` and never asks while that
estimator has no room (one documented exception below), so spending stays on budget whatever the
scores look like; the policies differ in *which* events they spend the budget on. Scores are
informativeness in ``[0, 1]`` (higher = more informative, ``1.0`` for an untrained model).

``Verdict.reason`` is always one of :data:`REASONS`:

- ``"informative"``: asked because the score reached the threshold;
- ``"random"``: decided by a random draw that ignores the score (the random part of :class:`Split`),
  whether it asked or not; these asks are an unbiased sample of the stream;
- ``"below_threshold"``: not asked, the score is below the threshold;
- ``"over_budget"``: not asked although the score reached the threshold, because the budget estimator
  has no room.

The one exception to the budget check is the random part of :class:`Split` (see there for why).

``Verdict.ask_proba`` is the probability, from the policy's state before the event, that an event with
this score is asked: Split (``v·budget`` plus ``1 − v`` when the uncertainty part would ask),
randomized variable uncertainty (``Φ((score/θ − 1)/δ)`` with room, 0 without) and selective sampling
(``b/(b + 1 − score)`` with room, 0 without) report it, so the accuracy estimates can weight each
label by ``1/p`` (:mod:`activestream.drift.estimates`). The deterministic policies (fixed, variable
uncertainty, BIQF; Split with ``v = 0``, randomized VU with ``δ = 0``) report ``None``.

The policies live one family a module: :mod:`~activestream.decide.fixed`,
:mod:`~activestream.decide.variable_uncertainty` (and its randomised variant),
:mod:`~activestream.decide.split`, :mod:`~activestream.decide.selective_sampling` and
:mod:`~activestream.decide.quantile_filter` (BIQF); the reasons are in :mod:`~activestream.decide.reasons`
and what the policies share in :mod:`~activestream.decide.budgeted`. This module gathers them, so the
import paths written before the split keep working.
"""

from __future__ import annotations

from activestream.decide.budgeted import BudgetedPolicy, check_fraction, check_positive, check_score
from activestream.decide.fixed import FixedThreshold
from activestream.decide.quantile_filter import BalancedIncrementalQuantileFilter
from activestream.decide.reasons import BELOW_THRESHOLD, INFORMATIVE, OVER_BUDGET, RANDOM, REASONS
from activestream.decide.selective_sampling import SelectiveSampling
from activestream.decide.split import Split, split_ask_proba
from activestream.decide.variable_uncertainty import RandomizedVariableUncertainty, VariableUncertainty

__all__ = [
    "BELOW_THRESHOLD",
    "INFORMATIVE",
    "OVER_BUDGET",
    "RANDOM",
    "REASONS",
    "BalancedIncrementalQuantileFilter",
    "FixedThreshold",
    "RandomizedVariableUncertainty",
    "SelectiveSampling",
    "Split",
    "VariableUncertainty",
    "split_ask_proba",
]

# What they were called before the split, when they were private to this module: confidence_split.py
# (and perhaps code elsewhere) imports them from here.
_BudgetedPolicy = BudgetedPolicy
_check_fraction = check_fraction
_check_positive = check_positive
_check_score = check_score
