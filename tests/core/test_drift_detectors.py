"""Drift detectors by name: the registry, errors, and which ones really have a warning zone."""

from __future__ import annotations

import pickle
import random

import pytest
from river import drift

from activestream.drift.detectors import (
    DETECTORS,
    WARNING_ZONE,
    detector_name,
    error_signal,
    has_warning_zone,
    is_one_sided,
    make_detector,
)

BINARY = ["ddm", "eddm", "hddm_a", "hddm_w", "fhddm"]


def error_stream(seed: int = 1, n_before: int = 2000, n_after: int = 2000) -> list[int]:
    """0/1 errors: 10% before, 40% after — a model's error rate jumping at a drift."""
    rng = random.Random(seed)
    return [int(rng.random() < (0.1 if i < n_before else 0.4)) for i in range(n_before + n_after)]


def test_registry_names_river_026_classes():
    assert set(DETECTORS) == {"adwin", "page_hinkley", "kswin", *BINARY}
    assert DETECTORS["hddm_a"] is drift.binary.HDDMA
    assert DETECTORS["hddm_w"] is drift.binary.HDDMW


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - {"kswin"}))
def test_error_detectors_fire_soon_after_an_error_rise_and_pickle(name):
    detector = make_detector(name)
    assert detector_name(detector) == name
    fired = []
    for i, error in enumerate(error_stream()):
        detector.update(error_signal(detector, error))
        if detector.drift_detected:
            fired.append(i)
    assert fired and 2000 <= fired[0] < 2300, fired
    restored = pickle.loads(pickle.dumps(detector))
    assert type(restored) is type(detector)


def test_fhddm_fires_on_a_fall_of_its_input_hence_error_signal():
    """River 0.26.1's FHDDM: fed raw errors it fires when the error *falls*, not when it rises."""
    rising, falling = make_detector("fhddm"), make_detector("fhddm")
    errors = error_stream()
    fired_rising = fired_falling = False
    for error in errors:
        rising.update(error)
        fired_rising |= rising.drift_detected
    for error in reversed(errors):
        falling.update(error)
        fired_falling |= falling.drift_detected
    assert not fired_rising and fired_falling


def test_kswin_fires_on_a_real_valued_shift_and_pickles():
    rng = random.Random(3)
    detector = make_detector("kswin", seed=1)
    fired = []
    for i in range(2000):
        detector.update(rng.gauss(0.2 if i < 1000 else 0.6, 0.1))
        if detector.drift_detected:
            fired.append(i)
    assert any(1000 <= i < 1100 for i in fired), fired
    restored = pickle.loads(pickle.dumps(detector))
    restored = pickle.loads(pickle.dumps(detector))
    assert type(restored) is type(detector)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_warning_zone_documentation_matches_behaviour(name):
    """WARNING_ZONE lists exactly the detectors that raise a warning on a real error jump."""
    detector = make_detector(name, seed=1)
    warned = False
    for error in error_stream(seed=2, n_before=1000, n_after=1000):
        detector.update(error_signal(detector, error))
        warned |= bool(getattr(detector, "warning_detected", False))
    assert warned == (name in WARNING_ZONE) == has_warning_zone(detector)


def test_params_pass_through_and_seed_reaches_kswin_only():
    assert make_detector("adwin", delta=0.01).delta == 0.01
    assert make_detector("kswin", seed=5).seed == 5
    assert make_detector("ddm", seed=5).warm_start == 30  # a seed is harmless where unused


def test_unknown_name_and_bad_params_raise_value_error():
    with pytest.raises(ValueError, match="unknown drift detector 'cusum'; choose one of: adwin"):
        make_detector("cusum")
    with pytest.raises(ValueError, match="bad parameters for drift detector 'adwin'"):
        make_detector("adwin", warm_start=3)


def test_direction():
    assert all(is_one_sided(make_detector(name)) for name in BINARY)
    assert not is_one_sided(make_detector("adwin"))
    assert not is_one_sided(make_detector("kswin", seed=1))
    assert not is_one_sided(make_detector("page_hinkley"))
    assert is_one_sided(make_detector("page_hinkley", mode="up"))
    assert not is_one_sided(make_detector("hddm_w", two_sided_test=True))
