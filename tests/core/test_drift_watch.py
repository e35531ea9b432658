"""The drift watch: learning through the arms, label-free alarms, and boosts."""

from __future__ import annotations

import itertools
import random

from river import datasets, naive_bayes

from activestream.decide import make_policy
from activestream.drift import BudgetBoost, DriftAdaptiveClassifier, LabelFreeDriftSignal
from activestream.drift.watch import DriftWatch
from activestream.learner import ActiveLearner


def sea_with_one_drift(n: int = 3000):
    return itertools.chain(
        datasets.synth.SEA(variant=0, seed=1).take(n), datasets.synth.SEA(variant=3, seed=2).take(n)
    )


def boosted(classifier, budget: float = 0.5) -> ActiveLearner:
    policy = BudgetBoost(make_policy("split", budget, seed=1), factor=2.0, duration=100, seed=1)
    return ActiveLearner(classifier, policy=policy, budget=budget, seed=1)


def test_a_plain_model_learns_without_arms_and_reports_no_drift():
    learner = ActiveLearner(naive_bayes.GaussianNB(), policy="split", budget=1.0, seed=1)
    watch = DriftWatch(learner)
    results = [watch.learn(x, y, unbiased=True) for x, y in sea_with_one_drift(500)]
    assert not any(results) and watch.adaptive is None and watch.status() is None
    assert learner.classifier.predict_one({0: 9.0, 1: 9.0, 2: 0.0}) is not None


def test_a_drift_of_the_active_arm_triggers_the_boost():
    learner = boosted(DriftAdaptiveClassifier("gnb", seed=1), budget=1.0)
    watch = DriftWatch(learner)
    drifts = [i for i, (x, y) in enumerate(sea_with_one_drift()) if watch.learn(x, y, unbiased=i % 5 == 0)]
    assert drifts and all(i > 3000 for i in drifts)
    assert learner.threshold_policy.n_triggers == len(drifts) == watch.status().drifts


def test_label_free_alarms_boost_only_when_asked_to():
    rng = random.Random(3)
    scores = [rng.uniform(0.0, 0.3) for _ in range(2000)] + [rng.uniform(0.5, 1.0) for _ in range(2000)]
    for boost_on_label_free, triggers in ((False, 0), (True, 1)):
        learner = boosted(naive_bayes.GaussianNB())
        watch = DriftWatch(learner, LabelFreeDriftSignal(), boost_on_label_free)
        assert watch.steers_policy == boost_on_label_free  # scores must then be observed between decisions
        alarms = sum(watch.observe_score(score) for score in scores)
        assert alarms == 1 and learner.threshold_policy.n_triggers == triggers


def test_only_a_label_free_signal_that_boosts_a_boostable_policy_steers_it():
    plain = ActiveLearner(naive_bayes.GaussianNB(), policy="split", budget=0.5, seed=1)
    assert not DriftWatch(plain, LabelFreeDriftSignal(), boost_on_label_free=True).steers_policy  # no boost
    assert not DriftWatch(boosted(naive_bayes.GaussianNB()), None, boost_on_label_free=True).steers_policy


def test_without_a_label_free_signal_scores_raise_no_alarm():
    watch = DriftWatch(ActiveLearner(naive_bayes.GaussianNB(), seed=1))
    assert not any(watch.observe_score(s) for s in [0.0] * 500 + [1.0] * 500)
