"""The memory of closed requests against a plain model of it: an insertion-ordered dict of ids."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.closed_requests import ClosedRequests
from activestream.join import JoinStatus

STATUSES = (JoinStatus.DUPLICATE, JoinStatus.EXPIRED)

# Few distinct ids, so that re-closing, forgetting, events asked twice and evictions happen often.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 12), st.integers(0, 8), st.sampled_from(STATUSES)),
        st.tuples(st.just("forget"), st.integers(0, 12)),
        st.tuples(st.just("pickle")),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 6), ops=operations)
def test_answers_like_a_list_of_the_newest_closings(capacity, ops):
    """The model: every closing in order, the last ``capacity`` kept, forgotten ones marked dead.

    A request answers with its live closing. An event answers with its newest closing if that one is
    live (as the store of strings did: a forgotten newest closing does not bring back an older one).
    """
    memory = ClosedRequests(capacity, STATUSES)
    ring: list[list] = []  # [request, event, status, alive]

    def kill(request: str) -> None:
        for x in ring:
            if x[0] == request:
                x[3] = False

    for op in ops:
        if op[0] == "add":
            _, r, e, status = op
            kill(f"r{r}")
            ring.append([f"r{r}", f"e{e}", status, True])
            memory.add(f"r{r}", f"e{e}", status)
        elif op[0] == "forget":
            kill(f"r{op[1]}")
            memory.forget(f"r{op[1]}")
        else:
            memory = pickle.loads(pickle.dumps(memory))
            ring = [x for x in ring if x[3]]  # a reload keeps the live ones, in order
        del ring[:-capacity]
        live = [x for x in ring if x[3]]
        assert len(memory) == len(live)
        for r in range(13):
            expected = next((x[2] for x in live if x[0] == f"r{r}"), None)
            assert memory.status_of_request(f"r{r}") is expected
        for e in range(9):
            newest = [x for x in ring if x[1] == f"e{e}"][-1:]
            expected = newest[0][2] if newest and newest[0][3] else None
            assert memory.status_of_event(f"e{e}") is expected
            assert memory.knows_event(f"e{e}") is (expected is not None)
        ids = [f"e{e}" for e in range(9)]
        assert memory.knows_events(ids) == [memory.knows_event(i) for i in ids]


def test_a_full_memory_keeps_answering_at_its_bound():
    memory = ClosedRequests(1000, STATUSES)
    for i in range(5000):
        memory.add(f"r{i}", f"e{i}", STATUSES[i % 2])
    assert len(memory) == 1000
    assert all(memory.status_of_request(f"r{i}") is None for i in range(4000))
    assert all(memory.status_of_request(f"r{i}") is STATUSES[i % 2] for i in range(4000, 5000))
    assert all(memory.knows_event(f"e{i}") for i in range(4000, 5000))


def test_a_saturated_filter_counter_only_costs_speed(monkeypatch):
    from activestream import closed_requests

    monkeypatch.setattr(closed_requests, "crc32", lambda data: 0)  # every event on one counter
    memory = ClosedRequests(300, STATUSES)
    for i in range(300):
        memory.add(f"r{i}", f"e{i}", STATUSES[0])
    for i in range(290):
        memory.forget(f"r{i}")
    assert memory._filter[0] == 255  # stuck: it stopped counting at 255
    assert [memory.knows_event(f"e{i}") for i in (0, 289, 290, 299, 300)] == [False, False, True, True, False]
    copy = pickle.loads(pickle.dumps(memory))
    assert copy._filter[0] == 10 and copy.knows_event("e295") and not copy.knows_event("e5")


def test_refuses_an_empty_bound():
    import pytest

    with pytest.raises(ValueError):
        ClosedRequests(0, STATUSES)
