"""The models' own parts: the selection by type selects what river's does."""

from __future__ import annotations

import decimal
import fractions
import numbers

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from river import compose

from activestream.models import SelectType

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
