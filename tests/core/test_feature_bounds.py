"""CategoryBounds: distinct string values per feature are bounded, deterministically and picklably."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.feature_bounds import DEFAULT_MAX_CATEGORIES, CategoryBounds


def admitted(bounds: CategoryBounds, features: dict) -> str | None:
    """What the engine does (``admit_within``), held equal to check-then-admit on a twin."""
    twin = pickle.loads(pickle.dumps(bounds))
    reason = twin.check(features)
    if reason is None:
        twin.admit(features)
    assert bounds.admit_within(features) == reason
    assert bounds == twin
    return reason


def test_the_1001st_distinct_value_is_refused_with_a_reason_naming_feature_and_setting():
    assert DEFAULT_MAX_CATEGORIES == 1000
    bounds = CategoryBounds(DEFAULT_MAX_CATEGORIES)
    for i in range(1000):
        assert admitted(bounds, {"city": f"c{i}", "x": float(i)}) is None
    assert bounds.check({"city": "c1000", "x": 0.0}) == (
        "feature 'city' would take its 1,001st distinct value (ACTIVESTREAM_MAX_CATEGORIES=1000)"
    )
    assert bounds.distinct("city") == 1000


def test_known_values_stay_welcome_after_the_bound_is_reached():
    bounds = CategoryBounds(2)
    admitted(bounds, {"c": "a"})
    admitted(bounds, {"c": "b"})
    assert bounds.check({"c": "a"}) is None and bounds.check({"c": "b"}) is None
    assert bounds.check({"c": "z"}) is not None
    assert bounds.check({"d": "z"}) is None  # another feature has its own bound


def test_numbers_and_booleans_are_not_categories():
    bounds = CategoryBounds(1, max_string_features=1)
    for i in range(100):
        assert admitted(bounds, {"x": i, "y": i / 7, "b": bool(i % 2), "big": 10**30 + i}) is None
    assert len(bounds) == 0 and bounds.distinct("x") == 0


def test_a_feature_with_numbers_and_strings_counts_its_strings_only():
    bounds = CategoryBounds(1)
    assert admitted(bounds, {"f": 1.0}) is None
    assert admitted(bounds, {"f": "one"}) is None
    assert admitted(bounds, {"f": 2.0}) is None
    assert bounds.check({"f": "two"}) is not None
    assert bounds.check({"f": "True"}) is not None and bounds.check({"f": True}) is None


def test_check_changes_nothing_and_a_refused_event_leaves_no_trace():
    bounds = CategoryBounds(1, max_string_features=2)
    admitted(bounds, {"a": "x"})
    before = pickle.dumps(bounds)
    # "b" would be admitted on its own, but the event is refused as a whole because of "a".
    assert admitted(bounds, {"b": "new", "a": "y"}) is not None
    assert pickle.dumps(bounds) == before
    assert bounds.distinct("b") == 0


def test_the_number_of_string_features_is_bounded_too():
    bounds = CategoryBounds(5, max_string_features=2)
    assert admitted(bounds, {"a": "x", "b": "x"}) is None
    assert bounds.check({"c": "x"}) == (
        "feature 'c' would be the 3rd feature with string values (ACTIVESTREAM_MAX_FEATURES=2)"
    )
    # Several new features in one event count together.
    fresh = CategoryBounds(5, max_string_features=2)
    assert fresh.check({"a": "x", "b": "y", "c": "z"}).startswith("feature 'c' would be the 3rd")


def test_a_reason_never_quotes_the_value_and_shortens_a_long_name():
    bounds = CategoryBounds(1)
    admitted(bounds, {"n" * 5000: "first"})
    reason = bounds.check({"n" * 5000: "secret-value"})
    assert "secret-value" not in reason and len(reason) < 160 and "\n" not in reason


def test_zero_means_unbounded_and_tracks_nothing():
    bounds = CategoryBounds(0)
    for i in range(2000):
        assert admitted(bounds, {f"f{i % 3}": f"v{i}", f"g{i}": "x"}) is None
    assert len(bounds) == 0 and not bounds.enabled


@pytest.mark.parametrize(("args", "message"), [((-1,), "max_categories"), ((5, 0), "max_string_features")])
def test_invalid_bounds_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        CategoryBounds(*args)


def test_a_pickled_copy_is_equal_and_behaves_the_same():
    bounds = CategoryBounds(3, max_string_features=4)
    for features in ({"a": "x", "n": 1}, {"a": "y"}, {"b": "z"}, {"a": "w"}):
        admitted(bounds, features)
    copy = pickle.loads(pickle.dumps(bounds))
    assert copy == bounds and repr(copy) == repr(bounds)
    for features in ({"a": "x"}, {"a": "v"}, {"c": "q"}, {"a": 1.0}):
        assert copy.check(features) == bounds.check(features)
    copy.admit({"b": "another"})
    assert copy != bounds


_PICKLE_IN_A_PROCESS = """
import pickle, sys
from activestream.feature_bounds import CategoryBounds
bounds = CategoryBounds(50, max_string_features=20)
for i in range(400):
    features = {f"f{i % 7}": f"value-{i * 7919 % 101}", "x": i}
    if bounds.check(features) is None:
        bounds.admit(features)
sys.stdout.write(pickle.dumps(bounds).hex())
"""


def test_the_same_admissions_give_the_same_bytes_in_any_process():
    """Sets iterate in an order that depends on the string hash seed; the checkpoint must not."""
    outputs = {
        subprocess.run(
            [sys.executable, "-c", _PICKLE_IN_A_PROCESS],
            env={"PYTHONHASHSEED": seed, **_pythonpath()},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def _pythonpath() -> dict[str, str]:
    import os

    keep = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME")
    return {k: os.environ[k] for k in keep if k in os.environ}


values = st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(-3, 3), st.booleans(), st.floats())
events = st.dictionaries(st.sampled_from(["f", "g", "h", "i"]), values, min_size=1, max_size=4)


@settings(max_examples=200)
@given(st.integers(0, 4), st.integers(1, 3), st.lists(events, max_size=40))
def test_bounds_hold_and_admitted_values_are_recorded(max_categories, max_string_features, stream):
    bounds = CategoryBounds(max_categories, max_string_features)
    for features in stream:
        reason = admitted(bounds, features)
        if reason is None and max_categories:
            for name, value in features.items():
                if isinstance(value, str):
                    assert value in bounds._values[name]
        assert len(bounds) <= max_string_features
        assert all(len(seen) <= max_categories for seen in bounds._values.values())
        if reason is not None:
            assert reason.startswith("feature '") and "ACTIVESTREAM_MAX_" in reason


@given(st.integers(0, 4), st.integers(1, 3), st.lists(events, max_size=40))
def test_admitting_a_run_at_once_is_admitting_each_in_turn(max_categories, max_string_features, stream):
    one = CategoryBounds(max_categories, max_string_features)
    many = CategoryBounds(max_categories, max_string_features)
    assert many.admit_all(stream) == [one.admit_within(features) for features in stream]
    assert many == one
