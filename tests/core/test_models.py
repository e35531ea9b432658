"""The models' own parts: the selection by type selects what river's does; the scaled pipeline learns and
predicts what river's pipeline does, bit for bit."""

from __future__ import annotations

import decimal
import fractions
import numbers
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import compose

from activestream.models import ScaledPipeline, SelectType, make_model

values = st.one_of(
    st.floats(allow_nan=True),
    st.integers(),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.builds(fractions.Fraction, st.integers(), st.integers(1, 9)),
    st.builds(decimal.Decimal, st.integers()),
    st.builds(np.float64, st.floats(allow_nan=False)),
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
    st.lists(st.integers(), max_size=2),
)


@given(st.dictionaries(st.text(max_size=3), values, max_size=8))
def test_selects_what_rivers_selection_does(x):
    for types in ((numbers.Number,), (str,), (int,), (float, str)):
        assert SelectType(*types).transform_one(x) == compose.SelectType(*types).transform_one(x)
        assert list(SelectType(*types).transform_one(x)) == list(compose.SelectType(*types).transform_one(x))


event_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
    st.integers(-(2**70), 2**70),  # beyond a float's range: river fails part-way, and so must we
    st.booleans(),
    st.sampled_from(["a", "b"]),  # a string: the encoder learns a category, river's route from then on
    st.builds(np.float64, st.floats(-10, 10)),  # not a wire type: river's route
)
events = st.dictionaries(st.sampled_from("wxyz"), event_values, max_size=4)
numeric_events = st.dictionaries(st.sampled_from("wxyz"), st.floats(-1e3, 1e3), max_size=4)


def _outcome(method, *args):
    try:
        return pickle.dumps(method(*args))
    except Exception as error:
        return type(error)


def _state(pipeline):
    """Every step's learned state, byte for byte (the branches' steps one by one: river's pipelines also
    cache a plan of their steps, which is not state)."""
    union, classifier = pipeline.steps.values()
    steps = [step for branch in union.transformers.values() for step in branch.steps.values()]
    return [pickle.dumps(step) for step in [*steps, classifier]]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflows, in both pipelines alike
@pytest.mark.parametrize("name", ["logreg", "logreg_ovr"])
@given(stream=st.lists(st.tuples(st.one_of(numeric_events, events), st.booleans()), max_size=40))
def test_the_scaled_pipeline_is_rivers_pipeline_bit_for_bit(name, stream):
    ours = make_model(name)
    rivers = compose.Pipeline(*[step.clone() for step in ours.steps.values()])
    assert type(ours) is ScaledPipeline
    for x, y in stream:
        assert _outcome(ours.predict_proba_one, x) == _outcome(rivers.predict_proba_one, x)
        assert _outcome(ours.learn_one, x, y) == _outcome(rivers.learn_one, x, y)
        assert _state(ours) == _state(rivers)
    # A checkpoint of each: the route found again is the copy's own steps. (Both go through the round trip:
    # a set of the encoder's categories is rebuilt from its pickle, and its order may then differ from the
    # original's with the process's string hashes.)
    copy, rivers = pickle.loads(pickle.dumps(ours)), pickle.loads(pickle.dumps(rivers))
    x = {"w": 0.5, "x": 2.0}
    assert pickle.dumps(copy.predict_proba_one(x)) == pickle.dumps(rivers.predict_proba_one(x))
    assert _outcome(copy.learn_one, x, True) == _outcome(rivers.learn_one, x, True)
    assert _state(copy) == _state(rivers)


def test_the_scaled_pipeline_takes_the_direct_route_for_numbers_only():
    model = make_model("logreg")
    model.learn_one({"a": 1.0, "b": 2}, True)
    assert model._direct is not None and not model._direct[1]._zero_dict  # numbers: the direct route
    model.learn_one({"a": 1.0, "c": "s"}, False)
    assert model._direct[1]._zero_dict  # a category was seen: river's route for every event from now on
    assert type(model.clone()) is ScaledPipeline and model.clone()._direct is None  # found when first used


def test_the_scaled_pipeline_learns_unsupervised_parts_during_predict_as_river_does():
    ours, rivers = (
        make_model("logreg"),
        compose.Pipeline(*[s.clone() for s in make_model("logreg").steps.values()]),
    )
    with compose.learn_during_predict():
        for x in ({"a": 1.0}, {"a": 3.0}):
            assert ours.predict_proba_one(x) == rivers.predict_proba_one(x)
    assert _state(ours) == _state(rivers)
