"""Query by committee: disagreement ordering, range, cold start, seeding and online bagging."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import base, datasets, naive_bayes

from activestream.models import GaussianNB, naive_bayes_proba
from activestream.score.committee import Committee, KLConsensus, VoteEntropy

MEASURES = [VoteEntropy, KLConsensus]
SERVED = {"A": 0.5, "B": 0.5}


class Fixed(base.Classifier):
    """Always predicts the same distribution; counts what it learns."""

    def __init__(self, proba: dict):
        self.proba = proba
        self.n_learned = 0

    def learn_one(self, x, y):
        self.n_learned += 1

    def predict_proba_one(self, x):
        return dict(self.proba)


class LabelOnly(base.Classifier):
    """A classifier without probabilities, like some river models."""

    def __init__(self, label):
        self.label = label

    def learn_one(self, x, y):
        pass

    def predict_one(self, x):
        return self.label


def committee_of(*probas: dict) -> Committee:
    committee = Committee([Fixed(p) for p in probas])
    committee.learn_one({}, "A")
    committee.learn_one({}, "B")
    return committee


@pytest.mark.parametrize("cls", MEASURES)
def test_disagreeing_committee_scores_higher(cls):
    agreeing = cls(committee_of({"A": 0.9, "B": 0.1}, {"A": 0.8, "B": 0.2}, {"A": 0.85, "B": 0.15}))
    disagreeing = cls(committee_of({"A": 0.9, "B": 0.1}, {"A": 0.2, "B": 0.8}, {"A": 0.6, "B": 0.4}))
    assert disagreeing.score({}, SERVED) > agreeing.score({}, SERVED)


@pytest.mark.parametrize("cls", MEASURES)
def test_extremes(cls):
    assert cls(committee_of({"A": 1.0}, {"A": 1.0})).score({}, SERVED) == 0.0
    assert cls(committee_of({"A": 1.0}, {"B": 1.0})).score({}, SERVED) == pytest.approx(1.0)
    three_way = Committee([Fixed({c: 1.0}) for c in "ABC"])
    for label in "ABC":
        three_way.learn_one({}, label)
    assert cls(three_way).score({}, SERVED) == pytest.approx(1.0)


def test_vote_entropy_ignores_confidence_but_kl_does_not():
    mild = committee_of({"A": 0.55, "B": 0.45}, {"A": 0.45, "B": 0.55})
    strong = committee_of({"A": 1.0, "B": 0.0}, {"A": 0.0, "B": 1.0})
    assert VoteEntropy(mild).score({}, SERVED) == VoteEntropy(strong).score({}, SERVED) == pytest.approx(1.0)
    assert KLConsensus(mild).score({}, SERVED) < KLConsensus(strong).score({}, SERVED)


@pytest.mark.parametrize("cls", MEASURES)
def test_cold_start_scores_one(cls):
    untrained = cls(size=3, seed=0)
    assert untrained.score({0: 1.0}, SERVED) == 1.0
    one_class = cls(Committee([Fixed({"A": 1.0}), Fixed({"A": 1.0})]))
    one_class.learn_one({}, "A")
    assert one_class.score({}, SERVED) == 1.0
    trained = cls(committee_of({"A": 1.0}, {"A": 1.0}))
    assert trained.score({}, {}) == 1.0
    assert trained.score({}, {"A": 1.0}) == 1.0


@pytest.mark.parametrize("cls", MEASURES)
def test_members_without_opinion_are_left_out(cls):
    committee = committee_of({"A": 1.0}, {}, {})
    assert cls(committee).score({}, SERVED) == 1.0  # one opinion is no committee
    committee = committee_of({"A": 1.0}, {"B": 1.0}, {})
    assert cls(committee).score({}, SERVED) == pytest.approx(1.0)


def test_label_only_members_vote_one_hot():
    committee = Committee([LabelOnly("A"), LabelOnly("B"), LabelOnly("A")])
    committee.learn_one({}, "A")
    committee.learn_one({}, "B")
    assert committee.opinions({}).tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]


def test_given_members_learn_each_example_once():
    members = [Fixed({"A": 1.0}), Fixed({"B": 1.0})]
    committee = Committee(members)
    for label in "ABAB":
        committee.learn_one({}, label)
    assert [m.n_learned for m in members] == [4, 4]
    assert list(committee.classes) == ["A", "B"]


def test_bagging_draws_poisson_counts():
    committee = Committee.bagging(Fixed({"A": 1.0}), size=4, seed=0)
    for _ in range(500):
        committee.learn_one({}, "A")
    counts = [m.n_learned for m in committee.members]
    assert len(set(counts)) > 1  # members see different samples
    assert all(400 < c < 600 for c in counts)  # Poisson(1) averages one lesson per example


def sea_scores(cls, seed: int) -> list[float]:
    measure = cls(size=5, seed=seed)
    stream = datasets.synth.SEA(seed=1)
    scores = []
    for x, y in itertools.islice(stream, 300):
        scores.append(measure.score(x, SERVED))
        measure.learn_one(x, y)
    return scores


@pytest.mark.parametrize("cls", MEASURES)
def test_bagged_committee_is_deterministic_and_in_range(cls):
    scores = sea_scores(cls, seed=5)
    assert scores == sea_scores(cls, seed=5)
    assert scores != sea_scores(cls, seed=6)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == 1.0  # nothing learned yet
    assert min(scores) < 0.5  # the committee comes to agree somewhere


def test_bagged_committee_learns_sea():
    committee = Committee.bagging(naive_bayes.GaussianNB(), size=5, seed=1)
    stream = list(datasets.synth.SEA(seed=1).take(400))
    for x, y in stream[:300]:
        committee.learn_one(x, y)
    for member in committee.members:
        accuracy = sum(member.predict_one(x) == y for x, y in stream[300:]) / 100
        assert accuracy > 0.7


def test_invalid_committees():
    with pytest.raises(ValueError, match="at least 2 members"):
        Committee([Fixed({"A": 1.0})])
    with pytest.raises(ValueError, match="not both"):
        VoteEntropy(committee_of({"A": 1.0}, {"B": 1.0}), base=naive_bayes.GaussianNB())


@given(
    st.lists(
        st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.sampled_from("abcd")), min_size=0, max_size=30
    ),
    st.floats(-100, 100),
    st.floats(-100, 100),
)
def test_naive_bayes_proba_is_rivers(examples, u, v):
    """The committee's float arithmetic gives river's (scipy's) probabilities, to rounding."""
    model = naive_bayes.GaussianNB()
    for a, b, y in examples:
        model.learn_one({"u": a, "v": b}, y)
    ours, rivers = naive_bayes_proba(model, {"u": u, "v": v}), model.predict_proba_one({"u": u, "v": v})
    assert ours.keys() == rivers.keys()
    for label, p in rivers.items():
        assert ours[label] == pytest.approx(p, rel=1e-9, abs=1e-300)


def test_naive_bayes_proba_on_counts():
    model = naive_bayes.MultinomialNB()
    for text, y in [({"good": 2, "fine": 1}, "pos"), ({"bad": 3}, "neg"), ({"good": 1, "bad": 1}, "pos")]:
        model.learn_one(text, y)
    x = {"good": 1, "bad": 2}
    assert naive_bayes_proba(model, x) == pytest.approx(model.predict_proba_one(x), rel=1e-12)


def test_the_served_gaussian_nb_falls_back_to_river_on_a_non_finite_likelihood():
    model = GaussianNB()
    model.learn_one({"u": 0.0}, "a")
    model.learn_one({"u": 1.0}, "b")
    model.joint_log_likelihood = lambda x: {"a": float("-inf"), "b": 0.0}  # as a zero variance can give
    assert model.predict_proba_one({"u": 0.5}) == pytest.approx({"a": 0.0, "b": 1.0})
