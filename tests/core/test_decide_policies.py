"""Threshold policies: spending on budget, cold start, determinism, verdict contents, registry."""

from __future__ import annotations

import functools
import math
import pickle
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.decide import (
    POLICIES,
    REASONS,
    BalancedIncrementalQuantileFilter,
    ConfidenceSplit,
    FixedThreshold,
    Policy,
    SelectiveSampling,
    Split,
    VariableUncertainty,
    Verdict,
    make_policy,
)

ADAPTIVE = [
    "variable_uncertainty",
    "randomized_variable_uncertainty",
    "split",
    "selective_sampling",
    "biqf",
    "confidence_split",
]
ALL = ["fixed", *ADAPTIVE]
RANDOMIZED = ["randomized_variable_uncertainty", "split", "selective_sampling", "confidence_split"]
#: Policies with a random part (``reason == "random"``), not gated by the budget estimator.
WITH_RANDOM_PART = ("split", "confidence_split")
BUDGETS = [0.01, 0.05, 0.10, 0.20]
N_EVENTS = 50_000


@functools.cache
def score_stream(kind: str, n: int = N_EVENTS, seed: int = 0) -> tuple[float, ...]:
    """Synthetic informativeness streams, generated once per session."""
    rng = random.Random(f"{kind}-{seed}")
    if kind == "uniform":
        return tuple(rng.random() for _ in range(n))
    if kind == "skewed":  # a mostly confident model: Beta(0.5, 5), mass near 0
        return tuple(rng.betavariate(0.5, 5.0) for _ in range(n))
    if kind == "untrained":  # cold start: a model that has seen no labels scores everything 1.0
        return (1.0,) * n
    if kind == "shift":  # confident, then a drift makes the model uncertain half way
        half = n // 2
        return tuple(rng.betavariate(0.5, 5.0) for _ in range(half)) + tuple(
            0.5 + 0.5 * rng.random() for _ in range(n - half)
        )
    if kind == "stuck":  # a model stuck on the majority class: every score low and equal
        return (0.05,) * n
    raise ValueError(kind)


def fraction_asked(policy: Policy, scores: tuple[float, ...]) -> float:
    decide = policy.decide
    return sum(decide(s).ask for s in scores) / len(scores)


def verdicts(policy: Policy, scores: tuple[float, ...] | list[float]) -> list[Verdict]:
    return [policy.decide(s) for s in scores]


# ---------------------------------------------------------------------------------------- registry


def test_registry_names_match_class_names() -> None:
    assert sorted(POLICIES) == sorted(ALL)
    for name, cls in POLICIES.items():
        assert cls.name == name
        assert issubclass(cls, Policy)


@pytest.mark.parametrize("name", ALL)
def test_make_policy_builds_the_named_policy(name: str) -> None:
    policy = make_policy(name, 0.05, seed=3)
    assert type(policy) is POLICIES[name]
    assert policy.name == name
    assert policy.budget == 0.05
    assert policy.spending == 0.0


def test_make_policy_passes_parameters() -> None:
    policy = make_policy("biqf", 0.1, window=10, w_tol=5)
    assert isinstance(policy, BalancedIncrementalQuantileFilter)
    assert (policy.window, policy.w_tol) == (10, 5.0)


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown policy 'nope'") as error:
        make_policy("nope", 0.1)
    for name in ALL:
        assert name in str(error.value)


def test_unknown_parameter_names_the_policy() -> None:
    with pytest.raises(TypeError, match=r"bad parameters for policy 'fixed'.*window"):
        make_policy("fixed", 0.1, window=10)


@pytest.mark.parametrize("name", ALL)
def test_params_rebuild_an_equivalent_fresh_policy(name: str) -> None:
    scores = score_stream("uniform")[:2000]
    policy = make_policy(name, 0.1, seed=11)
    twin = make_policy(policy.name, policy.budget, seed=policy.seed, **policy.params)  # type: ignore[attr-defined]
    assert verdicts(policy, scores) == verdicts(twin, scores)
    assert repr(policy).startswith(type(policy).__name__ + "(budget=0.1, ")


# -------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, math.nan])
def test_invalid_budget_is_rejected(name: str, budget: float) -> None:
    with pytest.raises(ValueError, match="budget"):
        make_policy(name, budget)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("fixed", {"threshold": 1.5}, "threshold"),
        ("variable_uncertainty", {"threshold": 0.0}, "threshold"),
        ("variable_uncertainty", {"step": 1.0}, "step"),
        ("randomized_variable_uncertainty", {"delta": -1.0}, "delta"),
        ("split", {"v": 1.2}, "v must"),
        ("selective_sampling", {"b": 0.0}, "b must be"),
        ("biqf", {"window": 0}, "window"),
        ("biqf", {"w_tol": 0}, "w_tol"),
        ("biqf", {"budget_window": 0}, "budget_window"),
    ],
)
def test_invalid_parameters_are_rejected(name: str, params: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_policy(name, 0.1, **params)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("score", [-0.01, 1.01, math.nan])
def test_score_outside_unit_interval_is_rejected(name: str, score: float) -> None:
    with pytest.raises(ValueError, match="score"):
        make_policy(name, 0.1).decide(score)


# ------------------------------------------------------------------------------ spending on budget


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", ADAPTIVE)
@pytest.mark.parametrize("kind", ["uniform", "skewed", "untrained", "shift"])
def test_adaptive_policies_spend_the_budget(name: str, budget: float, kind: str) -> None:
    policy = make_policy(name, budget, seed=5)
    assert fraction_asked(policy, score_stream(kind)) == pytest.approx(budget, abs=0.005)


@pytest.mark.parametrize("budget", [0.01, 0.2])
@pytest.mark.parametrize("name", ADAPTIVE)
def test_a_stuck_model_still_gets_labels(name: str, budget: float) -> None:
    # Constant low scores: adaptive thresholds decay until they reach them.
    policy = make_policy(name, budget, seed=5)
    assert fraction_asked(policy, score_stream("stuck", n=20_000)) == pytest.approx(budget, abs=0.005)


@pytest.mark.parametrize("budget", [0.01, 0.1])
@pytest.mark.parametrize("name", ADAPTIVE)
def test_a_fully_certain_model_still_gets_labels(name: str, budget: float) -> None:
    # Scores of exactly 0 (a Hoeffding tree's pure leaves): certain, maybe confidently wrong after a drift.
    policy = make_policy(name, budget, seed=5)
    assert fraction_asked(policy, [0.0] * 20_000) == pytest.approx(budget, abs=0.005)


def test_fixed_threshold_stalls_on_a_stuck_model_as_documented() -> None:
    policy = FixedThreshold(0.1, threshold=0.5)
    assert fraction_asked(policy, score_stream("stuck", n=20_000)) == 0.0


@pytest.mark.parametrize("budget", BUDGETS)
def test_fixed_threshold_spends_the_budget_on_an_untrained_model(budget: float) -> None:
    policy = FixedThreshold(budget)
    assert fraction_asked(policy, score_stream("untrained", n=20_000)) == pytest.approx(budget, abs=0.005)


@pytest.mark.parametrize("name", ALL)
def test_cold_start_asks_for_the_first_event(name: str) -> None:
    policy = make_policy(name, 0.01, seed=0)
    first = policy.decide(1.0)
    assert first.ask
    assert first.reason == "informative"
    # ...and then waits about 1/budget events, instead of asking for the whole early stream.
    early = verdicts(policy, [1.0] * 200)
    assert 1 <= sum(v.ask for v in early) <= 3


@pytest.mark.parametrize("name", ALL)
def test_never_asks_without_room(name: str) -> None:
    policy = make_policy(name, 0.05, seed=2)
    for score in score_stream("uniform")[:5000]:
        had_room = policy.spending < policy.budget
        verdict = policy.decide(score)
        # The documented exception: Split's random part is not gated.
        assert had_room or not verdict.ask or verdict.reason == "random"


@pytest.mark.parametrize("name", ALL)
def test_asks_count_at_request_time(name: str) -> None:
    # No label has been answered (there is no answer API at all): spending already includes the ask.
    policy = make_policy(name, 0.1, seed=4)
    for score in score_stream("uniform")[:3000]:
        before = policy.spending
        if policy.decide(score).ask:
            assert policy.spending > before


@pytest.mark.parametrize("name", ADAPTIVE)
def test_label_delay_does_not_change_spending(name: str) -> None:
    # Labels answered `delay` events after the ask: decisions, and so the fraction asked, are the
    # same as with instant answers, because asks counted when they were made.
    scores = score_stream("uniform")[:10_000]
    outcomes = {}
    for delay in (0, 50, 2000):
        policy = make_policy(name, 0.05, seed=9)
        in_flight: list[int] = []
        answered = 0
        asks = []
        for i, score in enumerate(scores):
            while in_flight and in_flight[0] + delay <= i:
                in_flight.pop(0)
                answered += 1
            verdict = policy.decide(score)
            asks.append(verdict.ask)
            if verdict.ask:
                in_flight.append(i)
        outcomes[delay] = asks
        assert sum(asks) / len(asks) == pytest.approx(0.05, abs=0.005)
    assert outcomes[0] == outcomes[50] == outcomes[2000]


# ----------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_decisions(name: str) -> None:
    scores = score_stream("uniform")[:3000]
    assert verdicts(make_policy(name, 0.1, seed=42), scores) == verdicts(
        make_policy(name, 0.1, seed=42), scores
    )


@pytest.mark.parametrize("name", RANDOMIZED)
def test_different_seeds_differ(name: str) -> None:
    scores = score_stream("uniform")[:3000]
    one, two = make_policy(name, 0.1, seed=1), make_policy(name, 0.1, seed=2)
    assert verdicts(one, scores) != verdicts(two, scores)


@pytest.mark.parametrize("name", ALL)
def test_pickled_policy_continues_identically(name: str) -> None:
    scores = score_stream("shift", n=4000)
    policy = make_policy(name, 0.1, seed=8)
    verdicts(policy, scores[:2000])
    clone = pickle.loads(pickle.dumps(policy))
    assert verdicts(clone, scores[2000:]) == verdicts(policy, scores[2000:])


# A run of scores for ``decide_many``: mostly valid, with the odd one a policy must refuse, and runs of a
# cold model's 1.0 (the cold path) and of one value (the threshold walking far from its start).
run_scores = st.lists(
    st.one_of(
        st.floats(0.0, 1.0),
        st.floats(0.0, 1.0),
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 1.0, 1.0, 0.5, math.nan, -0.1, 1.5, math.inf]),
    ),
    max_size=300,
)


def _each(policy: Policy, scores: list[float]) -> list[object]:
    """``decide`` of each score, a refused score as its exception's type and message."""
    out: list[object] = []
    for score in scores:
        try:
            out.append(policy.decide(score))
        except Exception as error:
            out.append((type(error), str(error)))
    return out


def _as_compared(results: list[Verdict | Exception]) -> list[object]:
    return [(type(r), str(r)) if isinstance(r, Exception) else r for r in results]


def _full(verdict: object) -> object:
    # ``ask_proba`` is left out of a Verdict's equality: compare it too (identical, not close).
    return (verdict, verdict.ask_proba) if isinstance(verdict, Verdict) else verdict


def _confidence_split_reference(policy: ConfidenceSplit, score: float) -> Verdict:
    """The rule one event at a time, as the paper states it and as ``ConfidenceSplit.decide`` was written
    before it became ``decide_many``'s loop: the oracle that loop is held to."""
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be an informativeness in [0, 1], got {score!r}")
    threshold, room = policy.threshold, policy.estimator.has_room
    qualifies = policy.tau >= 1.0 or policy.floor + (1.0 - policy.floor) * (1.0 - score) < policy.tau
    cold = score >= 1.0 and policy.cold_random and policy.estimator.spending > 0.0
    part_asks = (policy.budget if cold else qualifies) if room else False
    ask_proba = policy.v * policy.budget + (1.0 - policy.v) * part_asks if policy.v > 0.0 else None
    policy.last_was_random = policy._rng.random() < policy.v
    if policy.last_was_random:
        ask = policy._rng.random() < policy.budget
        policy.estimator.record(ask)
        return Verdict(ask, threshold, "random", ask_proba)
    if not room:
        policy.estimator.record(False)
        return Verdict(False, threshold, "over_budget" if qualifies else "below_threshold", ask_proba)
    if cold:
        ask = policy._rng.random() < policy.budget
        policy.estimator.record(ask)
        return Verdict(ask, threshold, "informative" if ask else "below_threshold", ask_proba)
    policy.estimator.record(qualifies)
    if qualifies:
        policy.tau = max(1e-6, policy.tau * (1.0 - policy.step))
        return Verdict(True, threshold, "informative", ask_proba)
    policy.tau = min(1.0, policy.tau * (1.0 + policy.step))
    return Verdict(False, threshold, "below_threshold", ask_proba)


class _ReferenceConfidenceSplit(ConfidenceSplit):
    def decide(self, score: float) -> Verdict:
        return _confidence_split_reference(self, score)


def _same_at_once(one: Policy, many: Policy, runs: list[list[float]]) -> None:
    for scores in runs:
        expected, got = _each(one, scores), _as_compared(many.decide_many(scores))
        assert [_full(v) for v in got] == [_full(v) for v in expected]
        assert many.spending == one.spending
    # Every attribute, the estimator's and the generator's state included.
    assert pickle.dumps(vars(many)) == pickle.dumps(vars(one))


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(ALL),
    budget=st.sampled_from([0.01, 0.1, 1.0]),
    seed=st.integers(0, 2**16),
    runs=st.lists(run_scores, min_size=1, max_size=3),
)
def test_deciding_a_run_at_once_is_deciding_each_score(
    name: str, budget: float, seed: int, runs: list[list[float]]
) -> None:
    """``decide_many`` gives the verdicts, the draws and the state of ``decide`` score after score, runs
    after runs, refused scores included."""
    _same_at_once(make_policy(name, budget, seed=seed), make_policy(name, budget, seed=seed), runs)


@settings(max_examples=200, deadline=None)
@given(
    budget=st.sampled_from([0.01, 0.05, 0.1, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
    runs=st.lists(run_scores, min_size=1, max_size=4),
    options=st.fixed_dictionaries(
        {},
        optional={
            "v": st.sampled_from([0.0, 0.1, 0.5]),
            "floor": st.sampled_from([0.0, 0.5]),
            "cold_random": st.booleans(),
            "step": st.sampled_from([0.01, 0.3]),
            "budget_window": st.sampled_from([10, 100]),
        },
    ),
)
def test_confidence_split_decides_a_run_in_its_own_loop_as_score_after_score(
    budget: float, seed: int, runs: list[list[float]], options: dict
) -> None:
    """ConfidenceSplit's loop (the service's default policy; ``decide`` is one run of it) against the rule
    one event at a time, every option and path: random part, no room, a cold model, the threshold at its
    cap and walking."""
    reference = _ReferenceConfidenceSplit(budget, seed=seed, **options)
    _same_at_once(reference, ConfidenceSplit(budget, seed=seed, **options), runs)


# -------------------------------------------------------------------------------- verdict contents


def test_reasons_are_a_small_fixed_set() -> None:
    assert frozenset({"informative", "random", "below_threshold", "over_budget"}) == REASONS


@pytest.mark.parametrize("name", ALL)
def test_verdicts_use_known_reasons_and_finite_thresholds(name: str) -> None:
    seen: Counter[str] = Counter()
    for kind in ("uniform", "skewed", "shift"):
        for verdict in verdicts(make_policy(name, 0.2, seed=1), score_stream(kind, n=5000)):
            assert math.isfinite(verdict.threshold)
            seen[verdict.reason] += 1
    assert set(seen) <= REASONS
    assert {"informative", "below_threshold", "over_budget"} <= set(seen)
    assert ("random" in seen) == (name in WITH_RANDOM_PART)


@pytest.mark.parametrize("name", [n for n in ALL if n not in WITH_RANDOM_PART])
def test_reasons_agree_with_the_threshold(name: str) -> None:
    policy = make_policy(name, 0.2, seed=6)
    for score in score_stream("uniform")[:5000]:
        verdict = policy.decide(score)
        if verdict.reason in ("informative", "over_budget"):
            assert score >= verdict.threshold - 1e-12
        else:
            assert verdict.reason == "below_threshold"
            assert score <= verdict.threshold + 1e-12
        assert verdict.ask == (verdict.reason == "informative")


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(ALL),
    budget=st.floats(min_value=0.001, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
    scores=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=200),
)
def test_any_scores_give_well_formed_verdicts(
    name: str, budget: float, seed: int, scores: list[float]
) -> None:
    policy = make_policy(name, budget, seed=seed)
    for verdict in verdicts(policy, scores):
        assert isinstance(verdict.ask, bool)
        assert math.isfinite(verdict.threshold)
        assert verdict.reason in REASONS
    assert 0.0 <= policy.spending <= 1.0


# ---------------------------------------------------------------------------- policy-specific rules


def test_variable_uncertainty_adapts_only_with_room() -> None:
    policy = VariableUncertainty(0.5, threshold=0.5, step=0.1)
    policy.decide(0.1)
    assert policy.threshold == pytest.approx(0.45)  # discard with room: ask more
    policy.decide(0.9)
    assert policy.threshold == pytest.approx(0.495)  # ask: ask less
    assert policy.decide(0.9).reason == "over_budget"
    assert policy.threshold == pytest.approx(0.495)  # no room: unchanged


def test_variable_uncertainty_threshold_stays_in_unit_interval() -> None:
    high = VariableUncertainty(1.0, threshold=0.99, step=0.5)
    for _ in range(20):
        high.decide(1.0)
    assert high.threshold == 1.0
    low = VariableUncertainty(1.0, threshold=0.5, step=0.5)
    for _ in range(2000):
        low.decide(0.0)
    assert 0.0 < low.threshold < 1e-5


def test_variable_uncertainty_threshold_decays_towards_low_scores() -> None:
    policy = VariableUncertainty(0.1)
    verdicts(policy, score_stream("stuck", n=5000))
    assert policy.threshold == pytest.approx(0.05, rel=0.05)


def test_split_random_part_is_flagged() -> None:
    policy = Split(0.2, v=0.5, seed=3)
    reasons: Counter[tuple[bool, str]] = Counter()
    for score in score_stream("uniform")[:20_000]:
        verdict = policy.decide(score)
        assert policy.last_was_random == (verdict.reason == "random")
        reasons[verdict.ask, verdict.reason] += 1
    in_random_part = reasons[True, "random"] + reasons[False, "random"]
    assert in_random_part == pytest.approx(10_000, rel=0.03)
    assert reasons[True, "random"] / in_random_part == pytest.approx(0.2, abs=0.015)  # P(ask) = budget


@pytest.mark.parametrize("budget", BUDGETS)
def test_split_with_only_a_random_part_is_random_sampling(budget: float) -> None:
    # v = 1 is the random-sampling baseline: each event asked with probability = budget.
    policy = Split(budget, v=1.0, seed=12)
    assert fraction_asked(policy, score_stream("shift")) == pytest.approx(budget, abs=0.005)


def test_split_random_sample_is_not_starved_by_a_drift() -> None:
    # Scores jump half way (the model becomes uncertain): the uncertainty part wants every label,
    # but the random part keeps sampling at the same rate, so quality estimates cover the drift too.
    policy = Split(0.05, seed=13)
    scores = score_stream("shift")
    random_asks = [i for i, s in enumerate(scores) if (v := policy.decide(s)).ask and v.reason == "random"]
    first_half = sum(i < len(scores) // 2 for i in random_asks)
    assert len(random_asks) == pytest.approx(0.2 * 0.05 * len(scores), rel=0.15)
    assert first_half / len(random_asks) == pytest.approx(0.5, abs=0.06)


def test_split_random_asks_ignore_the_score() -> None:
    # The random sample must be unbiased: its asked scores look like the stream's.
    policy = Split(0.2, v=0.5, seed=4)
    scores = score_stream("uniform")
    random_asks = [s for s in scores if (v := policy.decide(s)).ask and v.reason == "random"]
    assert len(random_asks) > 500
    assert np.mean(random_asks) == pytest.approx(np.mean(scores), abs=0.03)


def test_split_with_no_random_part_is_variable_uncertainty() -> None:
    scores = score_stream("uniform")[:5000]
    split = Split(0.1, v=0.0, seed=1)
    plain = VariableUncertainty(0.1)
    assert [v.ask for v in verdicts(split, scores)] == [v.ask for v in verdicts(plain, scores)]


def test_selective_sampling_asks_more_near_the_boundary() -> None:
    policy = SelectiveSampling(0.1, seed=0)
    scores = score_stream("uniform")
    asked = [s for s in scores if policy.decide(s).ask]
    assert np.mean(asked) > np.mean(scores) + 0.05
    assert SelectiveSampling(0.1).decide(1.0).ask  # d = 0: always, given room


def test_selective_sampling_adapts_b_to_the_budget() -> None:
    policy = SelectiveSampling(0.1, b=10.0, seed=0)
    verdicts(policy, score_stream("uniform")[:20_000])
    assert policy.b < 1.0  # started far too eager, brought down by the budget
    assert policy.initial_b == 10.0


def test_biqf_threshold_is_the_balanced_quantile() -> None:
    budget, window, w_tol = 0.1, 20, 5.0
    policy = BalancedIncrementalQuantileFilter(budget, window=window, w_tol=w_tol, budget_window=10**6)
    scores = score_stream("uniform")[:500]
    asked = 0
    for t, score in enumerate(scores, start=1):
        owed = policy.owed + budget
        recent = np.asarray(scores[max(0, t - window) : t])
        expected = np.quantile(recent, 1 - budget) - (recent.max() - recent.min()) * owed / w_tol
        verdict = policy.decide(score)
        assert verdict.threshold == pytest.approx(expected, abs=1e-12)
        asked += verdict.ask
        assert -w_tol <= policy.owed <= w_tol
    assert asked / len(scores) == pytest.approx(budget, abs=0.02)


def test_biqf_debt_is_bounded_by_the_tolerance() -> None:
    # All-equal scores (range 0) give the balancing term no grip; the debt must not grow without bound.
    policy = BalancedIncrementalQuantileFilter(0.5, w_tol=3, budget_window=10)
    verdicts(policy, [0.3] * 1000)
    assert -3 <= policy.owed <= 3


# ------------------------------------------------------------------------------- ask probabilities

DETERMINISTIC = [name for name in ALL if name not in RANDOMIZED]


@pytest.mark.parametrize("kind", ["uniform", "skewed", "shift", "untrained"])
@pytest.mark.parametrize("budget", [0.01, 0.1])
@pytest.mark.parametrize("name", RANDOMIZED)
def test_ask_probabilities_are_calibrated(name: str, budget: float, kind: str) -> None:
    # Each ask is a Bernoulli(p) draw given the state, so asks − Σp is a martingale: it stays within
    # a few standard deviations sqrt(Σ p(1−p)) of 0 whatever the scores do.
    policy = make_policy(name, budget, seed=11)
    asks = expected = variance = 0.0
    for score in score_stream(kind, n=20_000):
        verdict = policy.decide(score)
        assert verdict.ask_proba is not None
        assert 0.0 <= verdict.ask_proba <= 1.0
        assert verdict.ask_proba > 0.0 or not verdict.ask  # an ask never has probability 0
        asks += verdict.ask
        expected += verdict.ask_proba
        variance += verdict.ask_proba * (1.0 - verdict.ask_proba)
    assert abs(asks - expected) <= 5.0 * math.sqrt(variance) + 1.0


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_policies_report_no_ask_probability(name: str) -> None:
    policy = make_policy(name, 0.1, seed=1)
    assert all(v.ask_proba is None for v in verdicts(policy, score_stream("uniform")[:2000]))


@pytest.mark.parametrize(("name", "params"), [("split", {"v": 0.0}), ("confidence_split", {"v": 0.0})])
def test_a_random_share_of_zero_makes_a_policy_deterministic(name: str, params: dict[str, float]) -> None:
    policy = make_policy(name, 0.1, seed=1, **params)
    assert all(v.ask_proba is None for v in verdicts(policy, score_stream("uniform")[:2000]))


def test_random_sampling_asks_everyone_with_the_budget_probability() -> None:
    policy = Split(0.05, v=1.0, seed=3)
    assert {v.ask_proba for v in verdicts(policy, score_stream("uniform")[:2000])} == {0.05}


# ------------------------------------------------------------------------ confidence_split's options


def test_cold_random_samples_a_cold_model_at_the_budget_rate_and_holds_the_threshold() -> None:
    # Without the option a cold model's asks are paced evenly: the same events on every seed.
    paced = [[v.ask for v in verdicts(ConfidenceSplit(0.1, seed=s), [1.0] * 2000)] for s in (1, 2)]
    assert paced[0][0] and sum(paced[0]) == pytest.approx(200, abs=25)
    runs = []
    for seed in (1, 2):
        policy = ConfidenceSplit(0.1, seed=seed, cold_random=True)
        cold = verdicts(policy, [1.0] * 2000)
        assert cold[0].ask and cold[0].reason == "informative"  # the first ask at once, as without it
        assert policy.tau == pytest.approx(0.99)  # ...and no step after it: no opinion says nothing
        assert sum(v.ask for v in cold) / 2000 == pytest.approx(0.1, abs=0.02)
        # The budget rate with room in the estimator, the random share's v·budget without.
        assert cold[0].ask_proba == pytest.approx(0.91)  # v·budget + (1 − v): the uncertainty part asks
        assert {round(v.ask_proba, 9) for v in cold[1:]} <= {0.1, 0.01}
        runs.append([v.ask for v in cold])
        # Once the model has an opinion, the threshold walks as without the option.
        assert any(v.ask for v in verdicts(policy, [0.9] * 50)) and policy.tau != pytest.approx(0.99)
    assert runs[0] != runs[1]
    assert make_policy("confidence_split", 0.1, cold_random=True).params["cold_random"] is True
    assert "cold_random" not in ConfidenceSplit(0.1).params


def test_cold_random_asks_are_calibrated_and_stay_deterministic_without_a_random_share() -> None:
    policy = ConfidenceSplit(0.05, seed=4, cold_random=True)
    scores = [1.0] * 3000 + list(score_stream("uniform")[:3000])
    asks = expected = variance = 0.0
    for verdict in verdicts(policy, scores):
        asks += verdict.ask
        expected += verdict.ask_proba
        variance += verdict.ask_proba * (1.0 - verdict.ask_proba)
    assert abs(asks - expected) <= 5.0 * math.sqrt(variance) + 1.0
    assert all(v.ask_proba is None for v in verdicts(ConfidenceSplit(0.05, v=0.0, cold_random=True), scores))


@given(st.floats(allow_nan=True), st.sampled_from([0.0, 0.5, 0.9]))
def test_confidence_split_threshold_is_the_clamped_formula(tau, floor):
    policy = ConfidenceSplit(budget=0.1, floor=floor)
    policy.tau = tau
    expected = 0.0 if tau >= 1.0 else min(1.0, max(0.0, 1.0 - (tau - floor) / (1.0 - floor)))
    assert policy.threshold == expected
