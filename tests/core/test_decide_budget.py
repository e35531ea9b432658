"""WindowedBudget: validation, the bias-corrected estimate, and pacing asks to a budget."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.decide import WindowedBudget


def reference_spending(asks: list[bool], window: int) -> float:
    """The estimate written out: a weighted average of the asks, weight ((w-1)/w)^age."""
    decay = (window - 1) / window
    weights = [decay**age for age in range(len(asks))]
    return sum(w * a for w, a in zip(weights, reversed(asks), strict=True)) / sum(weights)


@pytest.mark.parametrize("budget", [0, 0.0, -0.1, 1.0001, 2, math.nan, math.inf])
def test_budget_outside_unit_interval_is_rejected(budget: float) -> None:
    with pytest.raises(ValueError, match=r"budget must be a fraction of events in \(0, 1\]"):
        WindowedBudget(budget)


@pytest.mark.parametrize("budget", ["0.1", None, True])
def test_budget_of_wrong_type_is_rejected(budget: object) -> None:
    with pytest.raises(TypeError, match="budget must be a number"):
        WindowedBudget(budget)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [0, -5])
def test_window_below_one_is_rejected(window: int) -> None:
    with pytest.raises(ValueError, match="window must be >= 1"):
        WindowedBudget(0.1, window)


@pytest.mark.parametrize("window", [10.0, True, "100"])
def test_window_of_wrong_type_is_rejected(window: object) -> None:
    with pytest.raises(TypeError, match="window must be an int"):
        WindowedBudget(0.1, window)  # type: ignore[arg-type]


def test_cold_start_has_room_and_reads_zero() -> None:
    est = WindowedBudget(0.01)
    assert est.spending == 0.0
    assert est.has_room
    assert est.n == 0


def test_an_ask_counts_at_once() -> None:
    # Asks count when requested: the label has not arrived, but the spending already shows it.
    est = WindowedBudget(0.5, window=100)
    for _ in range(10):
        est.record(False)
    before = est.spending
    est.record(True)
    assert est.spending > before
    assert est.n == 11


def test_early_estimate_is_bias_corrected() -> None:
    # After one ask in n << w events the estimate is about 1/n, not the biased 1/w.
    est = WindowedBudget(0.05, window=1000)
    est.record(True)
    assert est.spending == 1.0
    for _ in range(19):
        est.record(False)
    assert est.spending == pytest.approx(1 / 20, rel=0.02)


def test_long_run_estimate_is_the_plain_windowed_fraction() -> None:
    window = 50
    est = WindowedBudget(0.1, window=window)
    u = 0.0
    for i in range(40 * window):
        asked = i % 7 == 0
        est.record(asked)
        u = u * (window - 1) / window + asked
    assert est.spending == pytest.approx(u / window, rel=1e-9)
    assert est.spending == pytest.approx(1 / 7, abs=0.02)


def test_constant_streams_give_exact_estimates() -> None:
    always, never = WindowedBudget(0.5, window=30), WindowedBudget(0.5, window=30)
    for _ in range(200):
        always.record(True)
        never.record(False)
    assert always.spending == pytest.approx(1.0)
    assert never.spending == 0.0


def test_window_of_one_only_remembers_the_last_event() -> None:
    est = WindowedBudget(0.5, window=1)
    est.record(True)
    assert est.spending == 1.0
    est.record(False)
    assert est.spending == 0.0


def test_full_budget_always_has_room() -> None:
    # spending < 1 would refuse every other event; a budget of 1 must allow them all.
    est = WindowedBudget(1.0, window=10)
    for _ in range(50):
        assert est.has_room
        est.record(True)


@pytest.mark.parametrize("budget", [0.01, 0.05, 0.1, 0.2, 0.5])
def test_asking_whenever_there_is_room_spends_the_budget(budget: float) -> None:
    est = WindowedBudget(budget, window=1000)
    asks = []
    for _ in range(20_000):
        ask = est.has_room
        est.record(ask)
        asks.append(ask)
    assert asks[0], "a cold start must ask for the first event"
    # Bias correction: the second ask comes after about 1/budget events, not right away.
    assert asks.index(True, 1) == pytest.approx(1 / budget, rel=0.1)
    assert sum(asks) / len(asks) == pytest.approx(budget, abs=0.002)


def test_pickle_round_trip_keeps_the_state() -> None:
    est = WindowedBudget(0.2, window=40)
    for i in range(100):
        est.record(i % 3 == 0)
    clone = pickle.loads(pickle.dumps(est))
    assert (clone.spending, clone.n, clone.budget, clone.window) == (est.spending, est.n, 0.2, 40)
    for i in range(30):
        est.record(i % 2 == 0)
        clone.record(i % 2 == 0)
    assert clone.spending == est.spending


def test_repr_names_the_state() -> None:
    assert repr(WindowedBudget(0.1, 10)) == "WindowedBudget(budget=0.1, window=10, n=0, spending=0.0000)"


@settings(max_examples=60, deadline=None)
@given(asks=st.lists(st.booleans(), max_size=300), window=st.integers(min_value=1, max_value=200))
def test_spending_is_the_weighted_average_of_asks(asks: list[bool], window: int) -> None:
    est = WindowedBudget(0.1, window=window)
    for ask in asks:
        est.record(ask)
    assert 0.0 <= est.spending <= 1.0
    expected = reference_spending(asks, window) if asks else 0.0
    assert est.spending == pytest.approx(expected, abs=1e-9)
