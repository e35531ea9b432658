"""Recent accuracy estimates from unbiased, inverse-probability weighted or all labels."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activestream.drift.estimates import RecentAccuracy, choose_source


def test_estimates_read_as_the_accuracy_over_about_the_last_window_samples():
    acc = RecentAccuracy(window=100)
    for _ in range(1000):
        acc.update(True)
    for _ in range(100):
        acc.update(False)
    # After a full window of errors the old correct answers weigh (99/100)^100 ≈ 37%.
    assert acc.get() == pytest.approx(0.366, abs=0.01)


def test_unbiased_estimate_is_free_of_the_selection_bias_of_uncertainty_sampling():
    """Hard cases (asked by uncertainty) are answered right 60% of the time, easy ones 95%; the
    stream is 10% hard. Accuracy on the asked labels is biased; the random ones are not."""
    rng = random.Random(1)
    acc = RecentAccuracy(window=5000)
    for _ in range(100_000):
        hard = rng.random() < 0.1
        correct = rng.random() < (0.6 if hard else 0.95)
        if hard and rng.random() < 0.5:  # uncertainty sampling: asks half of the hard cases
            acc.update(correct)
        if rng.random() < 0.01:  # random asks
            acc.update(correct, unbiased=True)
    truth = 0.1 * 0.6 + 0.9 * 0.95
    assert abs(acc.get("unbiased") - truth) < 0.03
    assert acc.get("all") < truth - 0.15


def test_inverse_probability_weighting_undoes_a_known_selection():
    """Hard cases are asked with probability 0.5, easy ones with 0.02: weighting by 1/p recovers the
    stream's accuracy from the asked labels alone."""
    rng = random.Random(2)
    acc = RecentAccuracy(window=20_000)
    for _ in range(200_000):
        hard = rng.random() < 0.1
        correct = rng.random() < (0.6 if hard else 0.95)
        p = 0.5 if hard else 0.02
        if rng.random() < p:
            acc.update(correct, ask_proba=p)
    truth = 0.1 * 0.6 + 0.9 * 0.95
    assert abs(acc.get("ipw") - truth) < 0.02
    assert acc.get("all") < truth - 0.1


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.one_of(st.none(), st.floats(0.01, 1.0)))))
def test_estimates_stay_in_the_unit_interval_and_counts_add_up(events):
    acc = RecentAccuracy(window=10)
    for correct, unbiased, p in events:
        acc.update(correct, unbiased=unbiased, ask_proba=p)
    for source in ("unbiased", "ipw", "all"):
        value = acc.get(source)
        assert value is None or 0.0 <= value <= 1.0 + 1e-12
    assert acc.counts["all"] == len(events)
    assert acc.counts["unbiased"] == sum(u for _, u, _ in events)
    assert acc.counts["ipw"] == sum(p is not None for _, _, p in events)


def test_choose_source_and_validation():
    acc = RecentAccuracy()
    assert choose_source(acc) == "all"
    for _ in range(30):
        acc.update(True, ask_proba=0.5)
    assert choose_source(acc) == "ipw"
    for _ in range(30):
        acc.update(True, unbiased=True)
    assert choose_source(acc) == "unbiased"
    with pytest.raises(ValueError, match="ask_proba"):
        acc.update(True, ask_proba=0.0)
    with pytest.raises(ValueError, match="window"):
        RecentAccuracy(window=1)
    assert pickle.loads(pickle.dumps(acc)).counts == acc.counts
