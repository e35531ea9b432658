"""The budget boost: more labels, at random, for a while after a drift; then back to the base budget."""

from __future__ import annotations

import pickle
import random

import pytest

from activestream.decide import Policy, Verdict, make_policy
from activestream.drift import BudgetBoost


class AboveHalf(Policy):
    """Asks every score above 0.5 (a stand-in for an uncertainty policy)."""

    name = "above_half"

    def __init__(self, budget: float) -> None:
        self.budget = budget

    @property
    def spending(self) -> float:
        return self.budget

    def decide(self, score: float) -> Verdict:
        return Verdict(score > 0.5, 0.5, "informative" if score > 0.5 else "below_threshold")


@pytest.mark.parametrize("policy", ["split", "randomized_variable_uncertainty", "biqf"])
def test_boost_multiplies_the_asking_rate_for_its_duration_then_stops(policy):
    rng = random.Random(10)
    boosted = BudgetBoost(make_policy(policy, 0.05, seed=1), factor=3.0, duration=20_000, seed=2)
    scores = [rng.random() for _ in range(60_000)]
    base_part = sum(boosted.decide(s).ask for s in scores[:20_000]) / 20_000
    boosted.trigger()
    boost_part = sum(boosted.decide(s).ask for s in scores[20_000:40_000]) / 20_000
    after_part = sum(boosted.decide(s).ask for s in scores[40_000:]) / 20_000
    assert base_part == pytest.approx(0.05, abs=0.01)
    assert boost_part == pytest.approx(0.15, abs=0.015)
    assert after_part == pytest.approx(0.05, abs=0.01)
    assert not boosted.boosting and boosted.n_triggers == 1


def test_extra_asks_are_random_and_a_uniform_sample_of_the_stream():
    """The extra asks ignore the score: their scores look like the stream's, and they say "random"."""
    rng = random.Random(20)  # not the boost's seed: the same generator would draw the scores themselves
    boosted = BudgetBoost(AboveHalf(0.1), factor=2.0, duration=100_000, seed=2)
    boosted.trigger()
    random_scores = []
    for _ in range(100_000):
        score = rng.random()
        verdict = boosted.decide(score)
        if verdict.reason == "random":
            assert verdict.ask
            random_scores.append(score)
    # Uniform scores: about half of the random asks fall below 0.5, where the base policy never asks.
    assert len(random_scores) == pytest.approx(100_000 * 0.1 / 0.9, rel=0.05)
    assert sum(s < 0.5 for s in random_scores) / len(random_scores) == pytest.approx(0.5, abs=0.02)


def test_retrigger_restarts_the_countdown_and_is_deterministic():
    def run():
        boosted = BudgetBoost(make_policy("split", 0.1, seed=3), factor=2.0, duration=100, seed=3)
        out = []
        for i in range(1000):
            if i in (10, 60):
                boosted.trigger()
            out.append(boosted.decide(0.3))
            if i == 60:
                assert boosted.remaining == 99
        return out, boosted.n_triggers, boosted.remaining

    first = run()
    assert first == run()
    assert first[1] == 2 and first[2] == 0


def test_wraps_transparently_when_not_boosting_and_pickles():
    base, wrapped = make_policy("split", 0.1, seed=4), BudgetBoost(make_policy("split", 0.1, seed=4))
    rng = random.Random(40)
    for _ in range(2000):
        s = rng.random()
        assert base.decide(s) == wrapped.decide(s)
    assert wrapped.name == "split+boost" and wrapped.budget == 0.1
    assert wrapped.spending == pytest.approx(base.spending, abs=0.02)
    wrapped.trigger()
    copy = pickle.loads(pickle.dumps(wrapped))
    assert [wrapped.decide(0.5) for _ in range(200)] == [copy.decide(0.5) for _ in range(200)]


def test_rate_is_capped_and_configuration_checked():
    assert BudgetBoost(AboveHalf(0.6), factor=3.0).extra_rate == 1.0
    with pytest.raises(ValueError, match="factor"):
        BudgetBoost(AboveHalf(0.1), factor=1.0)
    with pytest.raises(ValueError, match="duration"):
        BudgetBoost(AboveHalf(0.1), duration=0)
