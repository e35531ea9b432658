"""The pending store: joins, TTL, eviction, duplicates, both indexes, pickling."""

from __future__ import annotations

import pickle

import pytest

from activestream.join import ExpiryReason, JoinStatus, PendingStore


def store_with(
    *ids: str, max_size: int = 10, ttl_ms: int = 1000, closed_max: int | None = None
) -> PendingStore:
    store = PendingStore(max_size=max_size, ttl_ms=ttl_ms, closed_max=closed_max)
    for i, key in enumerate(ids):
        store.add(f"r{key}", f"e{key}", {"x": float(i)}, asked_at_ms=i, decision_reason="informative")
    return store


def test_join_by_request_id_or_event_id():
    store = store_with("1", "2")
    by_request = store.join(10, request_id="r1")
    by_event = store.join(10, event_id="e2")
    assert (by_request.status, by_request.entry.event_id) == (JoinStatus.LEARNED, "e1")
    assert (by_event.status, by_event.entry.request_id) == (JoinStatus.LEARNED, "r2")
    assert len(store) == 0


def test_request_id_wins_and_an_unknown_one_falls_back_to_the_event_id():
    store = store_with("1", "2")
    assert store.join(10, request_id="r1", event_id="e2").entry.request_id == "r1"
    assert store.join(10, request_id="nope", event_id="e2").entry.request_id == "r2"


def test_label_delay_is_measured_from_the_ask():
    store = store_with("1")
    assert store.join(now_ms=750, request_id="r1").delay_ms == 750


def test_a_second_label_is_a_duplicate_by_either_id():
    store = store_with("1")
    store.join(5, request_id="r1")
    assert store.join(6, request_id="r1").status is JoinStatus.DUPLICATE
    assert store.join(6, event_id="e1").status is JoinStatus.DUPLICATE
    assert store.join(6, request_id="r1").entry is None


def test_unknown_ids():
    store = store_with("1")
    assert store.join(5, request_id="r9").status is JoinStatus.UNKNOWN
    assert store.join(5, event_id="e9").status is JoinStatus.UNKNOWN
    assert store.join(5).status is JoinStatus.UNKNOWN


def test_expire_removes_entries_past_their_ttl_oldest_first():
    store = store_with("1", "2", "3", ttl_ms=100)  # asked at 0, 1, 2
    expired = store.expire(now_ms=101)
    assert [(e.entry.request_id, e.reason) for e in expired] == [
        ("r1", ExpiryReason.TTL),
        ("r2", ExpiryReason.TTL),
    ]
    assert len(store) == 1 and "r3" in store
    assert store.expire(now_ms=101) == []


def test_a_label_after_expiry_is_expired_not_unknown():
    store = store_with("1", ttl_ms=100)
    store.expire(now_ms=500)
    result = store.join(501, event_id="e1")
    assert result.status is JoinStatus.EXPIRED and result.entry is None


def test_join_checks_the_ttl_even_before_a_sweep():
    store = store_with("1", ttl_ms=100)
    result = store.join(100, request_id="r1")
    assert result.status is JoinStatus.EXPIRED and result.entry.request_id == "r1"
    assert len(store) == 0


def test_overflow_evicts_the_oldest():
    store = store_with("1", "2", max_size=2)
    evicted = store.add("r3", "e3", {"x": 3.0}, asked_at_ms=3, decision_reason="random")
    assert [(e.entry.request_id, e.reason) for e in evicted] == [("r1", ExpiryReason.EVICTED)]
    assert len(store) == 2
    assert store.join(4, request_id="r1").status is JoinStatus.EXPIRED


def test_adding_a_pending_request_again_changes_nothing():
    store = store_with("1")
    assert store.add("r1", "e1", {"x": 9.0}, asked_at_ms=50, decision_reason="random") == []
    assert store.join(60, request_id="r1").entry.features == {"x": 0.0}


def test_knows_pending_and_recently_closed_events():
    store = store_with("1", "2")
    store.join(5, request_id="r2")
    assert store.knows_event("e1") and store.knows_event("e2") and not store.knows_event("e3")


def test_the_memory_of_closed_requests_is_bounded():
    store = store_with("1", "2", "3", closed_max=2)
    for key in "123":
        store.join(5, request_id=f"r{key}")
    assert store.join(6, request_id="r1").status is JoinStatus.UNKNOWN  # forgotten
    assert store.join(6, request_id="r3").status is JoinStatus.DUPLICATE
    assert len(store.closed) == 2
    assert store.knows_event("e3") and not store.knows_event("e1")


def test_a_closed_request_asked_again_is_pending_again():
    store = store_with("1")
    store.join(5, request_id="r1")
    store.add("r1", "e1", {"x": 1}, 6, "random")  # a replayed ask under the same id
    assert store.join(7, request_id="r1").status is JoinStatus.LEARNED
    assert store.join(8, request_id="r1").status is JoinStatus.DUPLICATE


def test_loads_a_store_pickled_when_closed_ids_were_kept_as_strings():
    from collections import OrderedDict

    store = store_with("1", "2")
    state = store.__dict__.copy()
    del state["closed"]  # the layout of stores checkpointed before activestream.closed_requests
    state["_closed"] = OrderedDict([("r0", ("e0", JoinStatus.DUPLICATE)), ("r9", ("e9", JoinStatus.EXPIRED))])
    state["_closed_by_event"] = {"e0": "r0", "e9": "r9"}
    old = PendingStore.__new__(PendingStore)
    old.__setstate__(state)
    assert old.join(1, request_id="r0").status is JoinStatus.DUPLICATE
    assert old.join(1, event_id="e9").status is JoinStatus.EXPIRED
    assert old.join(1, event_id="e2").status is JoinStatus.LEARNED
    assert not hasattr(old, "_closed")


def test_keeps_the_predicted_label_and_reason_for_evaluation():
    store = PendingStore(10, 100)
    store.add("r1", "e1", {"x": 1}, 0, "random", predicted_label=True)
    entry = store.join(1, request_id="r1").entry
    assert (entry.decision_reason, entry.predicted_label) == ("random", True)


def test_pickles_with_its_state():
    store = store_with("1", "2", "3")
    store.join(5, request_id="r2")
    copy = pickle.loads(pickle.dumps(store))
    assert len(copy) == 2
    assert copy.join(6, request_id="r2").status is JoinStatus.DUPLICATE
    assert copy.join(6, event_id="e3").status is JoinStatus.LEARNED


@pytest.mark.parametrize(("max_size", "ttl_ms"), [(0, 10), (10, 0)])
def test_refuses_empty_bounds(max_size, ttl_ms):
    with pytest.raises(ValueError):
        PendingStore(max_size, ttl_ms)


def test_an_entry_pickles_as_the_list_of_its_field_values_as_before():
    """The journal's and the checkpoint's format: what dataclass' own pickling stored (no migration)."""
    from dataclasses import fields

    from activestream.join import PendingEntry

    entry = PendingEntry("r1", "e1", {"x": 1.0}, 0, 1000, "informative", True, ask_proba=0.25)
    assert entry.__getstate__() == [getattr(entry, f.name) for f in fields(entry)]
    assert pickle.loads(pickle.dumps(entry)) == entry
