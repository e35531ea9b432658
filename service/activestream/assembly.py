"""Assemble the pure core from the configuration: the learner and its drift watch.

The core never reads configuration; this is the one place that turns ``Settings`` into core objects, so
the service, the demo and the tests build the same thing from the same options.

>>> from activestream.config import Settings
>>> learner = learner_from_settings(Settings(model="gnb", budget=0.05))
>>> learner.strategy, type(learner.classifier).__name__
('margin/confidence_split', 'DriftAdaptiveClassifier')
>>> type(learner_from_settings(Settings(adaptation="none")).classifier).__name__
'ScaledPipeline'
"""

from __future__ import annotations

from river import base

from activestream.config import Settings
from activestream.decide import Policy, make_policy
from activestream.drift import BudgetBoost, DriftAdaptiveClassifier, LabelFreeDriftSignal
from activestream.drift.watch import DriftWatch
from activestream.learner import ActiveLearner
from activestream.models import make_model
from activestream.score import make_measure

__all__ = ["drift_watch_for", "learner_from_settings"]


def _classifier(settings: Settings) -> base.Classifier:
    if settings.adaptation == "none":
        return make_model(settings.model, settings.seed)
    return DriftAdaptiveClassifier(
        settings.model,
        detector=settings.drift_detector,
        serve=settings.serve,
        seed=settings.seed,
        window=settings.passive_window,
    )


def _policy(settings: Settings) -> Policy:
    policy = make_policy(settings.policy, settings.budget, seed=settings.seed)
    if settings.drift_boost_factor > 1.0:
        return BudgetBoost(
            policy,
            factor=settings.drift_boost_factor,
            duration=settings.drift_boost_events,
            seed=settings.seed,
        )
    return policy


def learner_from_settings(settings: Settings) -> ActiveLearner:
    """The learner the service starts with when there is no checkpoint."""
    return ActiveLearner(
        _classifier(settings),
        measure=make_measure(settings.measure, seed=settings.seed),
        policy=_policy(settings),
        budget=settings.budget,
        seed=settings.seed,
    )


def drift_watch_for(
    learner: ActiveLearner, settings: Settings, label_free: LabelFreeDriftSignal | None = None
) -> DriftWatch:
    """The drift watch around ``learner``; ``label_free`` is a restored signal (default: a new one)."""
    if label_free is None and settings.label_free_detector:
        label_free = LabelFreeDriftSignal(settings.label_free_detector, seed=settings.seed)
    return DriftWatch(learner, label_free, settings.boost_on_label_free_alarm)
