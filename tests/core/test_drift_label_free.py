"""The label-free drift signal: a detector on the informativeness scores of every event."""

from __future__ import annotations

import pickle
import random

import pytest

from activestream.drift import LabelFreeDriftSignal


def scores(n_before: int, n_after: int, before=(0.05, 0.25), after=(0.3, 0.8), seed: int = 1):
    rng = random.Random(seed)
    return [rng.uniform(*before) for _ in range(n_before)] + [rng.uniform(*after) for _ in range(n_after)]


@pytest.mark.parametrize(
    ("detector", "params"),
    [("adwin", {}), ("page_hinkley", {"threshold": 2.0}), ("kswin", {"seed": 1})],
)
def test_fires_soon_after_a_score_distribution_shift(detector, params):
    signal = LabelFreeDriftSignal(detector, **params)
    alarms = [i for i, s in enumerate(scores(3000, 1000)) if signal.update(s)]
    assert any(3000 <= i < 3200 for i in alarms), alarms
    assert signal.n_alarms == len(alarms) and signal.n_events == 4000
    assert [p - 1 for p in signal.alarm_positions] == alarms


def test_no_alarm_on_a_stationary_score_stream():
    signal = LabelFreeDriftSignal()
    assert not any(signal.update(s) for s in scores(20_000, 0))
    assert signal.n_alarms == 0


def test_a_shift_to_more_uncertain_events_and_back_is_seen_both_ways():
    signal = LabelFreeDriftSignal()
    stream = scores(2000, 2000) + scores(2000, 0, seed=2)
    alarms = [i for i, s in enumerate(stream) if signal.update(s)]
    assert any(2000 <= i < 2200 for i in alarms) and any(4000 <= i < 4200 for i in alarms)


def test_grace_period_silences_the_warm_up():
    """A young model's scores fall as it learns; grace keeps that from raising alarms."""
    warm_up = [max(0.05, 1.0 - i / 300) for i in range(600)]
    loud, quiet = LabelFreeDriftSignal(), LabelFreeDriftSignal(grace=800)
    assert sum(loud.update(s) for s in warm_up) >= 1
    assert sum(quiet.update(s) for s in warm_up) == 0


def test_pickles_and_continues_identically():
    stream = scores(1500, 1500)
    signal = LabelFreeDriftSignal()
    for s in stream[:1000]:
        signal.update(s)
    copy = pickle.loads(pickle.dumps(signal))
    assert [signal.update(s) for s in stream[1000:]] == [copy.update(s) for s in stream[1000:]]
    assert copy.n_alarms == signal.n_alarms >= 1


def test_refuses_binary_detectors_and_bad_scores():
    with pytest.raises(ValueError, match="real-valued detector"):
        LabelFreeDriftSignal("hddm_a")
    with pytest.raises(ValueError, match="unknown drift detector"):
        LabelFreeDriftSignal("nope")
    with pytest.raises(ValueError, match="informativeness"):
        LabelFreeDriftSignal().update(1.5)
