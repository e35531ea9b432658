"""An unbiased accuracy estimate without a random share: inverse-probability weighting (IPW) of the labels
a randomized policy asks, from the decision to every estimate (the metric, the plateau, the drift arms)."""

from __future__ import annotations

import random

import pytest
from river import base, datasets

from activestream.decide.base import Policy, Verdict
from activestream.drift import BudgetBoost, DriftAdaptiveClassifier
from activestream.drift.estimates import unbiased_source, weighting_proba
from activestream.evaluate import prequential
from activestream.learner import ActiveLearner
from activestream.metrics import Metric, Metrics
from activestream.stopping import StoppingMonitor


class ScoreProportional(Policy):
    """A randomized policy without a random share: asks each event with probability ``floor + slope ·
    score²`` (far more near the boundary, where the score is high), and says so in ``ask_proba``."""

    name = "proportional"

    def __init__(self, floor: float = 0.02, slope: float = 0.5, seed: int = 1):
        self.floor, self.slope = floor, slope
        self.budget = floor + slope / 3
        self._rng = random.Random(seed)
        self._asked = self._seen = 0

    def decide(self, score: float) -> Verdict:
        p = self.floor + self.slope * score**2
        ask = self._rng.random() < p
        self._seen += 1
        self._asked += ask
        return Verdict(ask, 0.5, "informative" if ask else "below_threshold", ask_proba=p)

    @property
    def spending(self) -> float:
        return self._asked / self._seen if self._seen else 0.0


class Calibrated(base.Classifier):
    """A fixed model, ``P(True | x) = x["x"]``, that never learns. With ``x`` uniform in ``[0, 1]`` and
    labels drawn from that probability it is right with probability ``max(x, 1 − x)``: 75% overall, and
    50% at the boundary ``x = 0.5``, where its margin score is highest."""

    def learn_one(self, x, y, **kwargs):
        pass

    def predict_proba_one(self, x, **kwargs):
        return {False: 1.0 - x["x"], True: x["x"]}


TRUE_ACCURACY = 0.75


def calibrated_stream(n: int, seed: int = 7):
    rng = random.Random(seed)
    for _ in range(n):
        x = rng.random()
        yield {"x": x}, rng.random() < x


def test_ipw_recovers_the_accuracy_that_the_asked_labels_understate():
    learner = ActiveLearner(Calibrated(), measure="margin", policy=ScoreProportional(seed=3))
    metrics, monitor = Metrics(), StoppingMonitor(plateau_window=2000, plateau_epsilon=0.05)
    asked = correct_asked = 0
    for x, y in calibrated_stream(60_000):
        decision = learner.decide(x)
        if not decision.ask:
            continue
        correct = decision.y_pred == y
        asked += 1
        correct_asked += correct
        metrics.judged_weighted(correct, decision.ask_proba)
        monitor.on_weighted_label(correct, decision.ask_proba)
    plain = correct_asked / asked
    assert 10_000 < asked < 12_500  # 0.02 + 0.5 · E[score²] = 0.187 of the events
    # The asked labels are the hard cases: 0.64 expected (E[accuracy · p] / E[p]).
    assert plain < TRUE_ACCURACY - 0.08
    assert metrics.value(Metric.PREQUENTIAL_ACCURACY) == pytest.approx(TRUE_ACCURACY, abs=0.02)
    assert metrics.accuracy_source == "ipw"
    # The plateau's blocks (the last 2 × 2000 weighted labels) estimate it too, and see no progress.
    assert monitor.estimate_source == "ipw"
    assert monitor.recent_accuracy == pytest.approx(TRUE_ACCURACY, abs=0.04)
    assert monitor.signals["plateau"]


def test_the_arms_weight_the_labels_prequential_passes_them():
    classifier = DriftAdaptiveClassifier("gnb", seed=1, min_estimate=30)
    learner = ActiveLearner(classifier, measure="margin", policy=ScoreProportional(seed=5))
    result = prequential(learner, datasets.synth.SEA(seed=1).take(3000), delay=50)
    counts = classifier._active.accuracy.counts
    # Every learned label reached the arms with its probability; none was asked at random.
    assert counts["ipw"] == counts["all"] == classifier.status().n_labeled > 0
    assert counts["unbiased"] == 0 and result.labels_used >= counts["all"]
    assert classifier.status().estimate == "ipw"


def test_a_deterministic_policy_gives_the_arms_no_weights():
    classifier = DriftAdaptiveClassifier("gnb", seed=1)
    learner = ActiveLearner(classifier, measure="margin", policy="variable_uncertainty", budget=0.2, seed=1)
    prequential(learner, datasets.synth.SEA(seed=1).take(1000))
    assert classifier._active.accuracy.counts["ipw"] == 0
    assert classifier.status().estimate == "all"


def test_one_rule_random_sample_first_then_ipw():
    assert unbiased_source({"unbiased": 30, "ipw": 500}, 30) == "unbiased"
    assert unbiased_source({"unbiased": 29, "ipw": 30}, 30) == "ipw"
    assert unbiased_source({"unbiased": 29, "ipw": 29}, 30) is None
    usable = [weighting_proba(p) for p in (1.0, 0.5, 0.0, -0.1, 1.5, float("nan"), None)]
    assert usable == [1.0, 0.5, None, None, None, None, None]


def test_the_metric_prefers_the_random_sample_once_it_has_enough_labels():
    metrics = Metrics()
    for _ in range(40):
        metrics.judged_weighted(False, ask_proba=1.0)
    metrics.judged(True)  # one random label: too few to be preferred to 40 weighted ones
    assert metrics.accuracy_source == "ipw" and metrics.value(Metric.PREQUENTIAL_ACCURACY) == 0.0
    for _ in range(29):
        metrics.judged(True)
    assert metrics.accuracy_source == "unbiased" and metrics.value(Metric.PREQUENTIAL_ACCURACY) == 1.0
    with pytest.raises(ValueError, match="ask_proba"):
        metrics.judged_weighted(True, ask_proba=0.0)


def test_without_any_unbiased_label_the_metric_is_nan_and_the_plateau_off():
    metrics, monitor = Metrics(), StoppingMonitor(plateau_window=5, plateau_epsilon=1.0)
    assert metrics.accuracy_source is None
    assert metrics.value(Metric.PREQUENTIAL_ACCURACY) != metrics.value(Metric.PREQUENTIAL_ACCURACY)  # NaN
    assert monitor.estimate_source is None and monitor.recent_accuracy is None
    assert not monitor.signals["plateau"]


def test_the_plateau_and_the_pause_work_on_weighted_labels_alone():
    monitor = StoppingMonitor(plateau_window=10, plateau_epsilon=0.01, pause_on_signal=True, resume_drop=0.2)
    for i in range(19):
        monitor.on_weighted_label(True, ask_proba=0.1 if i % 2 else 1.0)
    assert not monitor.signals["plateau"]  # 19 < 2m
    monitor.on_weighted_label(True, ask_proba=0.5)
    assert monitor.signals["plateau"] and monitor.paused_by == "plateau"
    # While paused, a fall of the weighted estimate resumes it (were any weighted label still asked).
    for _ in range(10):
        monitor.on_weighted_label(False, ask_proba=0.5)
        if not monitor.paused:
            break
    assert not monitor.paused and monitor.resumes == 1
    with pytest.raises(ValueError, match="ask_proba"):
        monitor.on_weighted_label(True, ask_proba=1.5)


def test_the_plateau_prefers_random_labels_once_there_are_m():
    monitor = StoppingMonitor(plateau_window=5, plateau_epsilon=0.0)
    for _ in range(10):
        monitor.on_weighted_label(False, ask_proba=0.5)
    assert monitor.estimate_source == "ipw" and monitor.recent_accuracy == 0.0
    for _ in range(5):
        monitor.on_random_label(True)
    assert monitor.estimate_source == "unbiased" and monitor.recent_accuracy == 1.0
    assert not monitor.signals["plateau"]  # the random labels hold one block only


def test_a_label_feeds_the_samples_it_belongs_to():
    monitor = StoppingMonitor(plateau_window=3)
    monitor.on_label(True, unbiased=True, ask_proba=0.5)  # a random ask whose probability is known
    monitor.on_label(False)  # a deterministic policy's: no sample of the stream
    monitor.on_label(False, ask_proba=0.25)
    assert list(monitor._random_outcomes) == [True]
    assert list(monitor._weighted_outcomes) == [(True, 2.0), (False, 4.0)]


class FixedProba(Policy):
    """Asks every event with probability ``p`` (seeded), whatever the score."""

    name = "fixed_proba"

    def __init__(self, p: float, seed: int = 11):
        self.p, self.budget = p, p
        self._rng = random.Random(seed)

    def decide(self, score):
        ask = self._rng.random() < self.p
        return Verdict(ask, 0.5, "informative" if ask else "below_threshold", ask_proba=self.p)

    @property
    def spending(self):
        return self.p


def test_a_boosted_verdict_carries_the_boosted_policys_probability():
    policy = BudgetBoost(FixedProba(0.1), factor=3.0, duration=50_000, seed=2)
    q = policy.extra_rate
    assert policy.decide(0.5).ask_proba == 0.1  # not boosting: the base verdict as it is
    policy.trigger()
    verdicts = [policy.decide(0.5) for _ in range(50_000)]
    expected = 1 - (1 - 0.1) * (1 - q)  # asked by the base policy or by the extra draw
    assert all(v.ask_proba == pytest.approx(expected) for v in verdicts)
    assert sum(v.ask for v in verdicts) / len(verdicts) == pytest.approx(expected, abs=0.01)
    assert expected == pytest.approx(0.3)  # factor × budget


def test_a_boost_over_a_deterministic_policy_asks_with_probability_one_or_the_extra_rate():
    class EveryTenth(Policy):
        name, budget, spending = "every_tenth", 0.1, 0.1

        def __init__(self):
            self.n = 0

        def decide(self, score):
            self.n += 1
            return Verdict(self.n % 10 == 0, 0.5, "informative")

    policy = BudgetBoost(EveryTenth(), factor=2.0, duration=20_000, seed=4)
    policy.trigger()
    verdicts = [policy.decide(0.5) for _ in range(20_000)]
    base_asks = verdicts[9::10]
    assert {v.ask_proba for v in base_asks} == {1.0} and all(v.ask for v in base_asks)
    others = [v for i, v in enumerate(verdicts) if i % 10 != 9]
    assert {v.ask_proba for v in others} == {policy.extra_rate}
    assert sum(v.ask for v in others) / len(others) == pytest.approx(policy.extra_rate, abs=0.01)
