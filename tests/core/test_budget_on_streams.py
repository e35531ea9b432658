"""The budget holds on real streams, with a real model learning the labels it asks for.

The policy tests feed synthetic score sequences; here the scores come from a river model (Gaussian naive
Bayes: fast, and so confident after a few labels that most scores fall below 1e-6, the hardest case for a
threshold) that learns only the asked labels, prequentially, on drifting streams: SEA with abrupt drifts,
Agrawal with gradual drifts, and Electricity. Over a long stream the fraction of events asked must stay
within ±0.5 percentage points of the budget, with labels arriving at once or 500 events late.

Then the cold start: an untrained model must get labels from the first events on, and a model stuck on
one majority class must not stall an adaptive policy.
"""

from __future__ import annotations

import functools
import random

import pytest
from river import active, dummy, tree

from activestream.datasets import make_stream
from activestream.decide import make_policy
from activestream.evaluate import prequential
from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY, ActiveLearner, make_learner
from activestream.models import make_model
from activestream.score import make_measure

STREAMS = ["sea_abrupt", "agrawal_gradual", "elec"]
BUDGETS = [0.01, 0.05, 0.10, 0.20]
DELAYS = [0, 500]
#: "Long": 15 windows of the policies' budget estimator (1,000 events each), 3 drifts of SEA and Agrawal.
N_EVENTS = 15_000
#: Allowed gap between the fraction asked and the budget, in absolute terms (0.5 percentage points).
TOLERANCE = 0.005
ADAPTIVE = [
    "variable_uncertainty",
    "randomized_variable_uncertainty",
    "split",
    "selective_sampling",
    "biqf",
    "confidence_split",
]


@functools.cache
def events(name: str, n: int = N_EVENTS) -> tuple:
    """Each stream generated once per session (Agrawal costs ~45 µs an event to generate)."""
    return tuple(make_stream(name, n=n, seed=1))


def fraction_asked(learner: ActiveLearner, stream: str, delay: int) -> float:
    result = prequential(learner, events(stream), delay=delay)
    assert result.n_events == N_EVENTS
    return result.labels_fraction


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("stream", STREAMS)
def test_default_learner_spends_the_budget(stream: str, budget: float, delay: int) -> None:
    learner = make_learner("gnb", budget=budget, seed=7)
    asked = fraction_asked(learner, stream, delay)
    assert asked == pytest.approx(budget, abs=TOLERANCE), f"{learner.strategy} asked {asked:.4f}"


# The other adaptive policies, with the default measure, on the real stream: the smallest budget with
# labels at once, the largest with late labels (the full grid for every policy would take minutes).
@pytest.mark.parametrize(("budget", "delay"), [(0.01, 0), (0.20, 500)])
@pytest.mark.parametrize("policy", [p for p in ADAPTIVE if p != DEFAULT_POLICY])
def test_adaptive_policies_spend_the_budget(policy: str, budget: float, delay: int) -> None:
    learner = make_learner("gnb", measure=DEFAULT_MEASURE, policy=policy, budget=budget, seed=7)
    asked = fraction_asked(learner, "elec", delay)
    assert asked == pytest.approx(budget, abs=TOLERANCE), f"{learner.strategy} asked {asked:.4f}"


# ------------------------------------------------------------------------------------------ cold start


def cold_tree() -> tree.HoeffdingTreeClassifier:
    return tree.HoeffdingTreeClassifier(grace_period=50)


def asks(learner, stream, n: int) -> list[bool]:
    """The ask decisions over the first ``n`` events, learning each asked label at once."""
    decisions = []
    for x, y in stream[:n]:
        _, ask = learner.predict_one(x)
        decisions.append(ask)
        if ask:
            learner.learn_one(x, y)
    return decisions


def test_untrained_tree_gets_labels_from_the_first_events() -> None:
    """An untrained Hoeffding tree predicts nothing (``predict_proba_one`` is ``{}``). Our measures score
    that as maximally informative, so the default learner asks at once and keeps asking at budget."""
    stream = events("sea_abrupt")
    assert cold_tree().predict_proba_one(stream[0][0]) == {}
    decisions = asks(make_learner(cold_tree(), budget=0.1, seed=1), stream, 2000)
    assert any(decisions[:10]), "a cold start is asked from the first events"
    assert sum(decisions[:100]) >= 5
    assert sum(decisions) / len(decisions) == pytest.approx(0.1, abs=0.02)


@functools.cache
def river_dataset(name: str) -> tuple:
    from river import datasets

    dataset = {"phishing": datasets.Phishing, "image_segments": datasets.ImageSegments}[name]()
    return tuple(({k: float(v) for k, v in x.items()}, y) for x, y in dataset)


@pytest.mark.parametrize("budget", [0.01, 0.05, 0.10, 0.20])
@pytest.mark.parametrize(
    ("stream", "model"), [("phishing", "gnb"), ("image_segments", "hat"), ("phishing", "logreg")]
)
def test_default_learner_spends_from_the_first_events(stream: str, model: str, budget: float) -> None:
    """The cases where the old default (Split, threshold starting at 0.5) asked nothing for 400-1,400
    events: a confident or saturated cold model. Over the first 10% of the stream the default asks at
    least 0.8 of the budget, and over the whole stream it stays within ±0.5 points of it."""
    data = river_dataset(stream)
    model_name = "logreg_ovr" if model == "logreg" and len({y for _, y in data}) > 2 else model
    result = prequential(make_learner(model_name, budget=budget, seed=1), data, curve_every=len(data) // 10)
    first_tenth = result.curve[0]
    assert first_tenth.n_events == len(data) // 10
    assert first_tenth.labels_used >= int(0.8 * budget * first_tenth.n_events)
    assert result.labels_fraction == pytest.approx(budget, abs=TOLERANCE)


def test_river_entropy_sampler_never_starts_on_an_untrained_tree() -> None:
    """The contrast: river's EntropySampler gives the empty prediction entropy 0, asks with probability
    0, so the tree never learns anything and it never asks. (Its own docs example uses a logistic
    regression, whose untrained prediction is 50/50: maximal entropy.)"""
    decisions = asks(active.EntropySampler(cold_tree(), seed=1), events("sea_abrupt"), 2000)
    assert sum(decisions) == 0


def majority_stream(n: int = 5000, minority: float = 0.05, seed: int = 3) -> list:
    rng = random.Random(seed)
    return [({"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)}, rng.random() < minority) for _ in range(n)]


def majority_model() -> dummy.PriorClassifier:
    """A model that predicts the majority class for every event: class priors after 95:5 labels."""
    model = dummy.PriorClassifier()
    for i in range(100):
        model.learn_one({}, i % 20 == 0)
    return model


def test_fixed_threshold_stalls_on_a_majority_class_model() -> None:
    stream = majority_stream()
    # Every event scores the same, low: the informativeness of a 95/5 prediction.
    proba = majority_model().predict_proba_one(stream[0][0])
    assert max(proba.values()) == pytest.approx(0.95)
    assert make_measure(DEFAULT_MEASURE).score(stream[0][0], proba) < 0.5
    learner = ActiveLearner(majority_model(), DEFAULT_MEASURE, make_policy("fixed", 0.1, threshold=0.5))
    assert prequential(learner, stream).labels_used == 0


@pytest.mark.parametrize("policy", ADAPTIVE)
def test_adaptive_policies_do_not_stall_on_a_majority_class_model(policy: str) -> None:
    learner = make_learner(majority_model(), measure=DEFAULT_MEASURE, policy=policy, budget=0.1, seed=1)
    result = prequential(learner, majority_stream())
    assert result.labels_fraction == pytest.approx(0.1, abs=0.02)
    # ... and not just in a burst at the start: the second half is asked as much as the first.
    half = next(point for point in result.curve if point.n_events >= result.n_events // 2)
    assert result.labels_used - half.labels_used >= 0.4 * result.labels_used


def test_default_learner_on_the_benchmark_model_spends_the_budget() -> None:
    """The benchmark's base learner (logistic regression) on a drifting stream, labels 500 events late."""
    learner = make_learner(make_model("logreg"), budget=0.05, seed=3)
    asked = fraction_asked(learner, "agrawal_gradual", 500)
    assert asked == pytest.approx(0.05, abs=TOLERANCE)
