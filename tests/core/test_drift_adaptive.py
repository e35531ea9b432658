"""DriftAdaptiveClassifier: river contract, champion, estimates, checkpoints, inside the ActiveLearner."""

from __future__ import annotations

import dataclasses
import itertools
import pickle

import pytest
from river import checks, datasets, naive_bayes

from activestream.drift import DriftAdaptiveClassifier, DriftStatus
from activestream.learner import make_learner


def sea_drift(before: int = 2000, after: int = 2000, seed: int = 1, noise: float = 0.0):
    return itertools.chain(
        datasets.synth.SEA(variant=0, seed=seed, noise=noise).take(before),
        datasets.synth.SEA(variant=3, seed=seed + 100, noise=noise).take(after),
    )


# The third set (Hoeffding tree, KSWIN) passes too but takes several seconds: run it by hand with
# ``checks.check_estimator``.
@pytest.mark.parametrize(
    "params",
    list(DriftAdaptiveClassifier._unit_test_params())[:2],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_river_estimator_checks_pass_without_skips(params):
    model = DriftAdaptiveClassifier(**params)
    assert not model._unit_test_skips()
    checks.check_estimator(model)


def test_clone_is_fresh_with_the_same_parameters():
    model = DriftAdaptiveClassifier("gnb", detector="ddm", serve="passive", seed=3, window=100)
    for x, y in sea_drift(after=10):
        model.learn_one(x, y)
    clone = model.clone()
    assert clone._get_params() == model._get_params()
    assert clone.status().n_labeled == 0 and model.status().n_labeled == 2010


def test_the_given_model_instance_is_left_untouched():
    gnb = naive_bayes.GaussianNB()
    model = DriftAdaptiveClassifier(gnb)
    for x, y in sea_drift(before=100, after=0):
        model.learn_one(x, y)
    assert gnb.class_counts == {}


def test_champion_switches_to_the_better_arm_and_does_not_flap():
    """A deaf detector keeps the active arm on the old concept; the passive window forgets it."""
    model = DriftAdaptiveClassifier("gnb", detector_params={"delta": 1e-300}, window=400)
    switches = []
    for i, (x, y) in enumerate(sea_drift(after=3000, noise=0.1)):
        before = model.serving
        model.learn_one(x, y, unbiased=i % 4 == 0)
        if model.serving != before:
            switches.append(i)
    status = model.status()
    assert status.drifts == 0 and status.estimate == "unbiased"
    assert model.serving == "passive"
    assert status.accuracy_passive > status.accuracy_active + model.hysteresis
    # It switched because of the drift at 2,000, and with hysteresis it did not flap.
    assert switches and all(i > 2000 for i in switches) and len(switches) == status.champion_switches <= 3


def test_champion_returns_to_the_active_arm_when_it_is_better():
    """On a stationary stream the small passive window is worse than the ever-growing active model."""
    model = DriftAdaptiveClassifier("ht", window=100, hysteresis=0.01, seed=1)
    model._serving = "passive"  # start from the worse arm
    for i, (x, y) in enumerate(datasets.synth.SEA(variant=0, seed=2, noise=0.1).take(4000)):
        model.learn_one(x, y, unbiased=i % 3 == 0)
    assert model.serving == "active" and model.status().champion_switches >= 1


@pytest.mark.parametrize("serve", ["active", "passive"])
def test_fixed_serving_arm_is_served_and_never_switches(serve):
    model = DriftAdaptiveClassifier("gnb", serve=serve, detector_params={"delta": 1e-300}, window=200)
    stream = list(sea_drift(after=2000))
    for x, y in stream:
        model.learn_one(x, y, unbiased=True)
    assert model.serving == serve and model.status().champion_switches == 0
    x = stream[-1][0]
    assert model.predict_one(x) == model.arm_predictions(x)[serve]
    assert model.predict_proba_one(x) == model.serving_model.predict_proba_one(x)


def test_estimate_source_prefers_unbiased_then_ipw_then_all():
    stream = list(sea_drift(before=200, after=0))

    def source(**flags):
        model = DriftAdaptiveClassifier("gnb", min_estimate=30)
        for x, y in stream:
            model.learn_one(x, y, **flags)
        return model.status().estimate

    assert source() == "all"
    assert source(ask_proba=0.5) == "ipw"
    assert source(unbiased=True, ask_proba=0.5) == "unbiased"


def test_status_is_a_frozen_snapshot():
    model = DriftAdaptiveClassifier("gnb", track_baseline=True)
    for i, (x, y) in enumerate(sea_drift()):
        model.learn_one(x, y, unbiased=i % 5 == 0)
    status = model.status()
    assert isinstance(status, DriftStatus)
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.drifts = 0  # type: ignore[misc]
    assert status.detector == "adwin" and status.passive_strategy == "window"
    assert status.drifts == len(status.drift_positions) == 1
    assert status.labels_since_drift == status.n_labeled - status.drift_positions[-1]
    assert status.n_labeled == 4000 and status.n_unbiased == 800
    assert status.accuracy_baseline is not None
    assert DriftAdaptiveClassifier("gnb").status().accuracy_baseline is None


def test_pickle_round_trip_restores_both_arms_exactly():
    stream = list(sea_drift(before=1500, after=1500, noise=0.1))
    model = DriftAdaptiveClassifier("gnb", detector="ddm", window=300, track_baseline=True, seed=1)
    for i, (x, y) in enumerate(stream[:2000]):
        model.learn_one(x, y, unbiased=i % 5 == 0)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.status() == model.status()
    for i, (x, y) in enumerate(stream[2000:]):
        assert restored.arm_predictions(x) == model.arm_predictions(x)
        assert restored.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y, unbiased=i % 5 == 0)
        restored.learn_one(x, y, unbiased=i % 5 == 0)
    assert restored.status() == model.status()


def test_same_seed_same_run():
    def run():
        model = DriftAdaptiveClassifier("ht", detector="kswin", seed=4, window=200)
        out = []
        for x, y in sea_drift(before=300, after=300, noise=0.1):
            out.append(model.predict_one(x))
            model.learn_one(x, y)
        return out, model.status()

    assert run() == run()


def test_probabilities_name_every_seen_class_even_after_a_reset():
    model = DriftAdaptiveClassifier("gnb", serve="active")
    for x, y in sea_drift():
        model.learn_one(x, y)
        if model.drift_detected:
            break
    assert model.status().drifts == 1
    proba = model.predict_proba_one({"0": 1.0, "1": 1.0, "2": 1.0})
    assert set(proba) == {False, True} and sum(proba.values()) == pytest.approx(1.0)


def test_works_inside_the_active_learner_with_unbiased_labels_forwarded():
    clf = DriftAdaptiveClassifier("logreg", seed=1)
    learner = make_learner(clf, policy="split", budget=0.1, seed=1)
    asked = 0
    for x, y in datasets.synth.SEA(seed=1).take(3000):
        decision = learner.decide(x)
        if decision.ask:
            asked += 1
            learner.learn_one(x, y, unbiased=decision.reason == "random")
    status = clf.status()
    assert status.n_labeled == asked and 0 < status.n_unbiased < asked
    assert learner.predict_one(x)[0] in (True, False)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="serve"):
        DriftAdaptiveClassifier(serve="best")
    with pytest.raises(ValueError, match="hysteresis"):
        DriftAdaptiveClassifier(hysteresis=1.5)
    with pytest.raises(ValueError, match="unknown drift detector"):
        DriftAdaptiveClassifier(detector="nope")
    with pytest.raises(ValueError, match="unknown model"):
        DriftAdaptiveClassifier("svm")
