"""Drift adaptation on the labels an active learner gets: active (a change test reacts) versus passive
(continuous forgetting), side by side (Ditzler, Roveri, Alippi & Polikar, "Learning in Nonstationary
Environments: A Survey", IEEE Computational Intelligence Magazine, 2015).

- :mod:`~activestream.drift.detectors`: river drift detectors by name.
- :mod:`~activestream.drift.estimates`: recent accuracy from unbiased, weighted or all labels.
- :mod:`~activestream.drift.arms`: the active arm, the passive arm and the no-adaptation baseline.
- :mod:`~activestream.drift.adaptive`: :class:`DriftAdaptiveClassifier`, both arms on the same labels,
  serving the champion.
- :mod:`~activestream.drift.label_free`: a drift signal from the scores of all events, before labels.
- :mod:`~activestream.drift.boost`: a temporary budget boost after a drift (off by default).
"""

from activestream.drift.adaptive import DriftAdaptiveClassifier, DriftStatus
from activestream.drift.arms import ActiveArm, NoAdaptationArm, PassiveArm, forgets_by_itself
from activestream.drift.boost import BudgetBoost
from activestream.drift.detectors import DETECTORS, has_warning_zone, is_one_sided, make_detector
from activestream.drift.estimates import RecentAccuracy, choose_source
from activestream.drift.label_free import LabelFreeDriftSignal

__all__ = [
    "DETECTORS",
    "ActiveArm",
    "BudgetBoost",
    "DriftAdaptiveClassifier",
    "DriftStatus",
    "LabelFreeDriftSignal",
    "NoAdaptationArm",
    "PassiveArm",
    "RecentAccuracy",
    "choose_source",
    "forgets_by_itself",
    "has_warning_zone",
    "is_one_sided",
    "make_detector",
]
