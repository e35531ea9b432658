"""The active arm, the passive arm and the no-adaptation baseline, on one abrupt drift at a known point."""

from __future__ import annotations

import itertools
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import base, datasets, linear_model, naive_bayes, optim, preprocessing

from activestream.drift.arms import ActiveArm, NoAdaptationArm, PassiveArm, forgets_by_itself
from activestream.models import make_model

DRIFT_AT = 3000


def sea_drift(seed: int = 1, after: int = 3000, noise: float = 0.1, before: int = DRIFT_AT):
    """SEA concept 0, then concept 3 (threshold 8 → 9.5) from event ``before`` on."""
    return itertools.chain(
        datasets.synth.SEA(variant=0, seed=seed, noise=noise).take(before),
        datasets.synth.SEA(variant=3, seed=seed + 100, noise=noise).take(after),
    )


def run(arms, stream, fraction: float = 1.0, seed: int = 0, drift_at: int = DRIFT_AT):
    """Feed each arm the same labels (a random ``fraction`` of events); return per-arm hits and the
    number of labels learned before the drift."""
    rng = random.Random(seed)
    hits: dict[str, list[bool]] = {k: [] for k in arms}
    labels_at_drift = 0
    for i, (x, y) in enumerate(stream):
        if i == drift_at:
            labels_at_drift = len(hits[next(iter(arms))])
        if rng.random() < fraction:
            for k, arm in arms.items():
                hits[k].append(arm.learn_one(x, y, unbiased=True))
    return hits, labels_at_drift


def rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


@pytest.fixture(scope="module")
def every_label():
    arms = {
        "active": ActiveArm(make_model("gnb"), "adwin"),
        "passive": PassiveArm(make_model("gnb"), window=500),
        "baseline": NoAdaptationArm(make_model("gnb")),
    }
    hits, at = run(arms, sea_drift())
    return arms, hits, at


def test_active_arm_detects_the_drift_within_a_bounded_number_of_labels(every_label):
    arms, _, at = every_label
    active = arms["active"]
    assert active.n_drifts == 1
    delay = active.drift_positions[0] - at
    assert 0 < delay <= 1000


def test_active_arm_recovers_faster_than_no_adaptation(every_label):
    arms, hits, at = every_label
    detected = arms["active"].drift_positions[0]
    after = slice(detected, detected + 1500)
    assert rate(hits["active"][after]) > rate(hits["baseline"][after]) + 0.05
    # Before the drift the arms are the same learner: adaptation costs nothing while nothing changes.
    assert hits["active"][:at] == hits["baseline"][:at]


def test_passive_arm_adapts_without_a_detector(every_label):
    _, hits, at = every_label
    after = slice(at + 500, at + 2000)
    assert rate(hits["passive"][after]) > rate(hits["baseline"][after]) + 0.03


def test_active_arm_at_a_20_percent_budget():
    """Labels for a random 20% of events (1,000 before the drift at 5,000): the drift is found within
    1,000 labels, and pays off."""
    arms = {"active": ActiveArm(make_model("gnb"), "adwin"), "baseline": NoAdaptationArm(make_model("gnb"))}
    stream = sea_drift(seed=3, before=5000, after=10_000, noise=0.0)
    hits, at = run(arms, stream, fraction=0.2, seed=3, drift_at=5000)
    positions = [p for p in arms["active"].drift_positions if p > at]
    assert positions and positions[0] - at <= 1000
    assert arms["active"].n_drifts == 1
    assert rate(hits["active"][positions[0] :]) > rate(hits["baseline"][positions[0] :]) + 0.03


@pytest.mark.parametrize("model", ["gnb", "logreg"])
def test_no_false_alarm_on_a_stationary_stream(model):
    arm = ActiveArm(make_model(model), "adwin")
    for x, y in datasets.synth.SEA(variant=0, seed=7, noise=0.1).take(6000):
        arm.learn_one(x, y)
    assert arm.n_drifts == 0


def test_two_sided_detector_does_not_reset_an_improving_model():
    """ADWIN fires when a young model's error falls; that is judged an improvement and ignored."""
    arm = ActiveArm(make_model("logreg"), "adwin")
    stream = datasets.synth.SEA(variant=0, seed=4, noise=0.1).take(6000)
    for x, y in stream:
        arm.learn_one(x, y)
    assert arm.n_ignored >= 1 and arm.n_drifts == 0


class Recorder(base.DriftDetector):
    """A detector that records what it is fed and never fires."""

    def __init__(self):
        super().__init__()
        self.seen: list[float] = []

    def update(self, x):
        self.seen.append(x)


def test_detector_sees_all_errors_or_only_unbiased_ones_with_a_fallback():
    stream = list(datasets.synth.SEA(seed=1).take(600))
    everything = ActiveArm(naive_bayes.GaussianNB(), Recorder())
    unbiased = ActiveArm(naive_bayes.GaussianNB(), Recorder(), detector_input="unbiased", fallback_after=50)
    for i, (x, y) in enumerate(stream):
        flag = i < 300 and i % 10 == 0  # random labels for a while, then none
        everything.learn_one(x, y, unbiased=flag)
        unbiased.learn_one(x, y, unbiased=flag)
    assert len(everything.detector.seen) == 599  # all but the very first (no prediction yet)
    # 30 unbiased labels (the first one without a prediction), then every label once 50 in a row
    # were not random.
    assert len(unbiased.detector.seen) == 29 + (600 - 291 - 50)


def test_warning_zone_detector_trains_a_background_model_and_switches_to_it():
    arm = ActiveArm(make_model("gnb"), "ddm")
    switched = False
    for x, y in sea_drift(seed=2, noise=0.0):
        background = arm.background
        arm.learn_one(x, y)
        if arm.drift_detected and background is not None:
            switched = arm.model is background
            break
    assert arm.n_warnings >= 1 and switched


def test_reset_replays_the_post_change_labels():
    arm = ActiveArm(naive_bayes.GaussianNB(), "adwin", replay=200)
    for x, y in sea_drift(noise=0.0):
        arm.learn_one(x, y)
        if arm.drift_detected:
            # The fresh model has learned the replayed examples and the current one.
            seen = sum(arm.model.class_counts.values())
            assert 1 < seen <= 201
            break
    else:
        pytest.fail("no drift detected")


def test_arm_rejects_bad_configuration():
    with pytest.raises(ValueError, match="detector_input"):
        ActiveArm(make_model("gnb"), detector_input="some")
    with pytest.raises(ValueError, match="unknown drift detector"):
        ActiveArm(make_model("gnb"), "nope")
    with pytest.raises(ValueError, match="strategy"):
        PassiveArm(make_model("gnb"), strategy="decay")
    with pytest.raises(ValueError, match="window"):
        PassiveArm(make_model("gnb"), window=1)


def test_passive_strategy_follows_the_base_model():
    assert PassiveArm(make_model("logreg")).strategy == "sgd"
    assert PassiveArm(make_model("gnb")).strategy == "window"
    assert PassiveArm(make_model("ht")).strategy == "window"
    assert PassiveArm(make_model("logreg"), strategy="window").strategy == "window"
    assert forgets_by_itself(linear_model.PAClassifier())
    assert not forgets_by_itself(
        preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.Adam())
    )


def test_sgd_passive_arm_is_the_no_adaptation_learner():
    passive, baseline = PassiveArm(make_model("logreg")), NoAdaptationArm(make_model("logreg"))
    for x, y in sea_drift(after=1000):
        assert passive.learn_one(x, y) == baseline.learn_one(x, y)


@settings(max_examples=30, deadline=None)
@given(window=st.integers(2, 40), n=st.integers(0, 200))
def test_staggered_window_serves_a_model_of_the_latest_half_to_full_window(window, n):
    arm = PassiveArm(naive_bayes.GaussianNB(), window=window)
    for i in range(n):
        arm.learn_one({"x": float(i % 7)}, i % 3 == 0)
    w = arm.window
    served = arm.ages[0]
    assert served == min(n, served)  # never older than the stream
    if n >= w // 2:
        assert w // 2 <= served < w
        assert len(arm.ages) == 2 and arm.ages[1] == served - w // 2
    else:
        assert arm.ages == [n]
    # The served model has learned exactly ``served`` labels (GaussianNB counts them).
    assert sum(arm.model.class_counts.values()) == served


def test_arms_pickle_and_continue_identically():
    stream = list(sea_drift(after=1000))
    arms = [
        ActiveArm(make_model("gnb"), "ddm"),
        ActiveArm(make_model("logreg"), "adwin"),
        PassiveArm(make_model("ht"), window=300),
        NoAdaptationArm(make_model("gnb")),
    ]
    for arm in arms:
        for x, y in stream[:3500]:
            arm.learn_one(x, y)
        copy = pickle.loads(pickle.dumps(arm))
        for x, y in stream[3500:]:
            assert arm.predict_proba_one(x) == copy.predict_proba_one(x)
            assert arm.learn_one(x, y) == copy.learn_one(x, y)
        assert arm.accuracy.get() == copy.accuracy.get()


def test_accuracy_estimates_are_test_then_train():
    arm = NoAdaptationArm(naive_bayes.GaussianNB())
    assert arm.learn_one({"x": 0.0}, "a") is False  # nothing learned yet: no prediction
    assert arm.learn_one({"x": 0.0}, "a") is True
    assert arm.accuracy.counts == {"unbiased": 0, "ipw": 0, "all": 2}
