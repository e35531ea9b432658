"""The measure registry: every name builds its class, unknown names fail clearly."""

from __future__ import annotations

import pytest
from river import linear_model

from activestream.score import MEASURES, Measure, make_measure
from activestream.score.committee import KLConsensus, VoteEntropy
from activestream.score.density import DensityWeighted
from activestream.score.uncertainty import Entropy, Margin, RandomScore

EXPECTED_NAMES = {
    "least_confidence",
    "margin",
    "entropy",
    "random",
    "qbc_vote_entropy",
    "qbc_kl",
    "density",
    "expected_model_change",
}


def test_registry_names_match_class_names():
    assert set(MEASURES) == EXPECTED_NAMES
    for name, cls in MEASURES.items():
        assert cls.name == name
        assert issubclass(cls, Measure)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_every_name_builds_a_measure_with_cold_start_one(name):
    measure = make_measure(name, seed=0)
    assert isinstance(measure, MEASURES[name])
    assert measure.name == name
    assert measure.score({"x": 1.0}, {}) == 1.0


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown measure 'nope'") as error:
        make_measure("nope")
    for name in EXPECTED_NAMES:
        assert name in str(error.value)


def test_seed_reaches_random_and_committees():
    a, b = make_measure("random", seed=3), make_measure("random", seed=3)
    assert isinstance(a, RandomScore)
    assert [a.score({}, {0: 0.5, 1: 0.5}) for _ in range(5)] == [
        b.score({}, {0: 0.5, 1: 0.5}) for _ in range(5)
    ]
    committee = make_measure("qbc_vote_entropy", seed=9, size=3)
    assert isinstance(committee, VoteEntropy)
    assert committee.committee.seed == 9
    assert len(committee.committee.members) == 3


def test_committee_base_parameter():
    measure = make_measure("qbc_kl", base=linear_model.LogisticRegression(), size=4)
    assert isinstance(measure, KLConsensus)
    assert all(isinstance(m, linear_model.LogisticRegression) for m in measure.committee.members)


def test_density_parameters():
    default = make_measure("density")
    assert isinstance(default, DensityWeighted)
    assert isinstance(default.inner, Entropy)
    custom = make_measure("density", inner="margin", beta=0.5, memory=10)
    assert isinstance(custom.inner, Margin)
    assert (custom.beta, custom.memory) == (0.5, 10)
    seeded = make_measure("density", inner="qbc_kl", inner_params={"size": 3}, seed=4)
    assert seeded.inner.committee.seed == 4
    with pytest.raises(ValueError, match="cannot be 'density'"):
        make_measure("density", inner="density")
    with pytest.raises(ValueError, match="unknown measure"):
        make_measure("density", inner="nope")


def test_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError):
        make_measure("entropy", beta=2.0)
