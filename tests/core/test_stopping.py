"""Stopping criteria: plateau of the unbiased estimate, stabilising predictions, the label cap, pausing."""

from __future__ import annotations

import math
import random

import pytest

from activestream.stopping import CRITERIA, StoppingMonitor, cohen_kappa


def test_criteria_are_a_small_fixed_set():
    assert CRITERIA == ("plateau", "stable_predictions", "max_labels")
    assert set(StoppingMonitor().signals) == set(CRITERIA)


def test_plateau_needs_two_full_blocks_and_no_improvement_beyond_epsilon():
    monitor = StoppingMonitor(plateau_window=10, plateau_epsilon=0.05)
    for _ in range(19):
        monitor.on_random_label(True)
    assert not monitor.signals["plateau"]  # 19 < 2m
    monitor.on_random_label(True)
    assert monitor.signals["plateau"]  # 1.0 then 1.0


def test_an_improving_learner_is_no_plateau():
    monitor = StoppingMonitor(plateau_window=50, plateau_epsilon=0.02)
    rng = random.Random(1)
    for i in range(100):  # accuracy climbs from 0.5 to 1.0
        monitor.on_random_label(rng.random() < 0.5 + i / 200)
    assert not monitor.signals["plateau"]


def test_a_pause_holds_informative_asks_but_lets_random_ones_through():
    monitor = StoppingMonitor(plateau_window=20, plateau_epsilon=0.01, pause_on_signal=True)
    for _ in range(40):
        monitor.on_random_label(True)
    assert monitor.paused and monitor.paused_by == "plateau" and monitor.pauses == 1
    assert not monitor.allows("informative") and monitor.allows("random")


def test_without_pause_on_signal_the_signal_is_only_reported():
    monitor = StoppingMonitor(plateau_window=5)
    for _ in range(10):
        monitor.on_random_label(True)
    assert monitor.signals["plateau"] and not monitor.paused and monitor.allows("informative")


def test_resume_clears_the_pause_and_the_evidence():
    monitor = StoppingMonitor(plateau_window=5, pause_on_signal=True)
    for _ in range(10):
        monitor.on_random_label(True)
    monitor.resume()
    assert not monitor.paused and not monitor.signals["plateau"] and monitor.resumes == 1
    for _ in range(9):
        monitor.on_random_label(True)
    assert not monitor.paused  # new evidence is needed: 2m random labels again
    monitor.on_random_label(True)
    assert monitor.paused


def test_a_fall_in_accuracy_while_paused_resumes_by_itself():
    monitor = StoppingMonitor(plateau_window=20, pause_on_signal=True, resume_drop=0.1)
    for _ in range(40):
        monitor.on_random_label(True)
    assert monitor.paused
    for i in range(20):  # drift: half the predictions are wrong now
        monitor.on_random_label(i % 2 == 0)
        if not monitor.paused:
            break
    assert not monitor.paused and monitor.resumes == 1


def test_the_label_cap_stops_everything_and_resume_does_not_lift_it():
    monitor = StoppingMonitor(max_labels=3)
    for _ in range(3):
        assert monitor.allows("informative")
        monitor.on_ask()
    assert monitor.signals["max_labels"] and monitor.exhausted and monitor.paused
    monitor.resume()
    assert not monitor.allows("random") and not monitor.allows("informative")


def test_kappa():
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert cohen_kappa(["a", "a", "a"], ["a", "a", "a"]) == 1.0
    assert cohen_kappa(["a", "a"], ["b", "b"]) == 0.0
    assert cohen_kappa([1, 1, 0, 0], [0, 0, 1, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa([1], [])


def test_stabilising_predictions_compare_successive_models_on_the_same_items():
    monitor = StoppingMonitor(
        stability_size=50,
        stability_sample=1.0,
        stability_every=10,
        stability_patience=2,
        stability_threshold=0.95,
        pause_on_signal=True,
    )
    rng = random.Random(0)
    for _ in range(60):
        monitor.observe({"x": rng.uniform(-1, 1)})
    boundary = [0.5]

    def predict(rows):
        return [x["x"] > boundary[0] for x in rows]

    assert monitor.check_stability(0, predict) is None  # first check: nothing to compare with yet
    assert monitor.check_stability(5, predict) is None  # not stability_every labels later
    boundary[0] = 0.0  # the model still moves a lot
    kappa = monitor.check_stability(10, predict)
    assert kappa is not None and kappa < 0.9
    assert not monitor.signals["stable_predictions"]
    for version in (20, 30):  # the model stopped moving
        assert monitor.check_stability(version, predict) == 1.0
    assert monitor.signals["stable_predictions"]
    assert monitor.paused_by == "stable_predictions"


def test_the_held_set_is_bounded_and_follows_the_stream():
    monitor = StoppingMonitor(stability_size=10, stability_sample=1.0, stability_every=1, stability_refresh=3)
    for i in range(100):
        monitor.observe({"i": i})
    seen = []
    monitor.check_stability(0, lambda rows: [seen.append(x["i"]) or 0 for x in rows])
    assert sorted(seen) == list(range(90, 100))
    for i in range(100, 105):
        monitor.observe({"i": i})
    seen.clear()
    monitor.check_stability(1, lambda rows: [seen.append(x["i"]) or 0 for x in rows])
    # compared on the previous ten, then refreshed with the three newest candidates: only those are
    # predicted again (the seven kept ones were just predicted by the same model)
    assert seen[:10] == list(range(90, 100)) and seen[10:] == [102, 103, 104]


def test_predicting_only_the_fresh_items_changes_no_kappa():
    """The kept items' predictions are reused: every check's kappa is the one of predicting the whole held
    set again after the refresh, as the check did before."""
    rng = random.Random(3)
    xs = [{"x": rng.uniform(-1, 1)} for _ in range(2_000)]

    def boundary(version: int) -> float:
        return 0.5 * math.sin(version / 200)  # a model that moves, then settles, then moves

    reused, naive = [], []
    monitor = StoppingMonitor(stability_size=50, stability_sample=0.5, stability_every=1, seed=4)
    again = StoppingMonitor(stability_size=50, stability_sample=0.5, stability_every=1, seed=4)
    for version, x in enumerate(xs):
        monitor.observe(x)
        again.observe(x)
        if version % 10:
            continue
        b = boundary(version)
        reused.append(monitor.check_stability(version, lambda rows, b=b: [x["x"] > b for x in rows]))
        # what the check did before: predict the held set, refresh, predict the whole new held set
        kappa = (
            cohen_kappa(again._held_predictions, [x["x"] > b for x in again._held]) if again._held else None
        )
        again._last_check_version = version
        again._refresh()
        again._held_predictions = [x["x"] > b for x in again._held]
        naive.append(kappa)
    assert reused == naive
    assert len({k for k in naive if k is not None}) > 3


def test_admission_is_seeded():
    def held(seed):
        monitor = StoppingMonitor(stability_size=20, stability_sample=0.3, seed=seed)
        for i in range(200):
            monitor.observe({"i": i})
        out = []
        monitor.check_stability(0, lambda rows: [out.append(x["i"]) or 0 for x in rows])
        return out

    assert held(1) == held(1) != held(2)


@pytest.mark.parametrize(
    "kwargs", [{"plateau_window": 0}, {"stability_size": 0}, {"max_labels": -1}, {"stability_sample": 0.0}]
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        StoppingMonitor(**kwargs)
