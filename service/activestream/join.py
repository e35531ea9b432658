"""The pending store: label requests waiting for their label, joined when it arrives.

A pure, bounded data structure (time comes in as ``now_ms``; it is pickled into checkpoints). Entries
are indexed by request id and by event id, since a label may name either. An entry leaves the store when
its label is joined, when it outlives its TTL, or when the store is full and it is the oldest (evicted).
The ids of entries that left are remembered, the newest ``closed_max`` of them in memory allocated once
(``activestream.closed_requests``), so a second label for the same request is told apart (``duplicate``;
``expired``) from a label nobody asked for (``unknown``).

>>> store = PendingStore(max_size=2, ttl_ms=1000)
>>> store.add("r1", "e1", {"x": 1.0}, asked_at_ms=0, decision_reason="informative")
[]
>>> result = store.join(now_ms=250, request_id="r1")
>>> result.status, result.entry.features, result.delay_ms
(<JoinStatus.LEARNED: 'learned'>, {'x': 1.0}, 250)
>>> store.join(now_ms=300, event_id="e1").status
<JoinStatus.DUPLICATE: 'duplicate'>
>>> store.join(now_ms=300, request_id="nobody-asked").status
<JoinStatus.UNKNOWN: 'unknown'>
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from enum import StrEnum
from typing import Any

from activestream.closed_requests import ClosedRequests
from activestream.types import ClassLabel, Features

__all__ = ["Expired", "ExpiryReason", "JoinResult", "JoinStatus", "PendingEntry", "PendingStore"]


class JoinStatus(StrEnum):
    """What became of a label (a metric label: a small fixed set)."""

    LEARNED = "learned"  # joined with its pending request: the caller learns it
    UNKNOWN = "unknown"  # no such request (never asked, or forgotten long ago)
    EXPIRED = "expired"  # the request outlived its TTL or was evicted before the label came
    DUPLICATE = "duplicate"  # the request was answered already


class ExpiryReason(StrEnum):
    TTL = "ttl"
    EVICTED = "evicted"


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One label request waiting for its label; keeps what learning and evaluation need.

    ``decision_reason`` (``"random"``: the unbiased sample) and ``ask_proba`` (the probability with which
    the request was made, ``None`` when unknown) say how the label was chosen, for the accuracy
    estimates; ``predicted_label`` is the prediction it is judged against.

    Entries are pickled in checkpoints and in the ask journal. Fields added since (``ask_proba``) take
    their default when an older pickle is loaded:

    >>> import pickle
    >>> entry = PendingEntry("r1", "e1", {"x": 1.0}, 0, 1000, "informative", True, ask_proba=0.25)
    >>> pickle.loads(pickle.dumps(entry)) == entry
    True
    >>> old = PendingEntry.__new__(PendingEntry)
    >>> old.__setstate__(["r1", "e1", {"x": 1.0}, 0, 1000, "informative", True])  # before ask_proba
    >>> old.ask_proba is None, old.predicted_label
    (True, True)
    """

    request_id: str
    event_id: str
    features: Features
    asked_at_ms: int
    expires_at_ms: int
    decision_reason: str
    predicted_label: ClassLabel | None = None
    ask_proba: float | None = None

    def __getstate__(self) -> list[Any]:
        # What dataclass' own pickling of a frozen class with slots stores (the list of field values in
        # order), byte for byte, in half its time: every ask is journaled.
        return list(_entry_values(self))

    def __setstate__(self, state: list[Any]) -> None:
        # The state is the list of field values in order (dataclass' own pickling of a frozen class with
        # slots): a shorter list is an older version's, whose missing trailing fields take their defaults.
        names = [f.name for f in fields(self)]
        if len(state) > len(names):
            raise TypeError(f"a PendingEntry state has at most {len(names)} values, got {len(state)}")
        for f, value in zip(fields(self), state, strict=False):
            object.__setattr__(self, f.name, value)
        for f in fields(self)[len(state) :]:
            if f.default is MISSING:
                raise TypeError(f"a PendingEntry state lacks the required field {f.name!r}")
            object.__setattr__(self, f.name, f.default)


_entry_values = operator.attrgetter(*(f.name for f in fields(PendingEntry)))


@dataclass(frozen=True, slots=True)
class Expired:
    """An entry that left the store without its label."""

    entry: PendingEntry
    reason: ExpiryReason


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The outcome of a label: ``entry`` is set when it left the pending store just now.

    ``delay_ms`` (``now - asked_at``) is set for learned labels, for the label-delay histogram.
    """

    status: JoinStatus
    entry: PendingEntry | None = None
    delay_ms: int | None = None


class PendingStore:
    """Label requests waiting for labels, bounded in size and in time.

    Parameters
    ----------
    max_size
        Most entries waiting at once; adding beyond it evicts the oldest.
    ttl_ms
        An entry expires ``ttl_ms`` after it was asked.
    closed_max
        How many answered or expired request ids are remembered (default ``max_size``; ~105 bytes each,
        allocated when the store is made).

    Examples
    --------
    >>> store = PendingStore(max_size=1, ttl_ms=100)
    >>> _ = store.add("r1", "e1", {"x": 1}, asked_at_ms=0, decision_reason="random")
    >>> [(e.entry.request_id, e.reason.value) for e in store.add("r2", "e2", {"x": 2}, 10, "random")]
    [('r1', 'evicted')]
    >>> [(e.entry.request_id, e.reason.value) for e in store.expire(now_ms=110)]
    [('r2', 'ttl')]
    >>> store.join(now_ms=120, request_id="r2").status, len(store)
    (<JoinStatus.EXPIRED: 'expired'>, 0)
    """

    #: The votes of requests sent to several annotators (an ``activestream.aggregate.LabelAggregator``, set
    #: by the service), kept here so that a checkpoint saves them with the requests they belong to. A class
    #: attribute, so that stores pickled before it existed load with ``None``.
    ballots: Any = None

    def __init__(self, max_size: int, ttl_ms: int, closed_max: int | None = None):
        if max_size < 1 or ttl_ms < 1:
            raise ValueError(f"max_size and ttl_ms must be positive, got {max_size} and {ttl_ms}")
        self.max_size = max_size
        self.ttl_ms = ttl_ms
        self.closed_max = max_size if closed_max is None else closed_max
        # Insertion order is asking order, so the oldest entry (first to expire or be evicted) is first.
        self._pending: OrderedDict[str, PendingEntry] = OrderedDict()
        self._pending_by_event: dict[str, str] = {}
        self.closed = ClosedRequests(self.closed_max, tuple(JoinStatus))

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._pending

    def find(self, *, request_id: str | None = None, event_id: str | None = None) -> PendingEntry | None:
        """The pending entry a label names (by ``request_id``, else ``event_id``), left in the store.

        >>> store = PendingStore(max_size=2, ttl_ms=1000)
        >>> _ = store.add("r1", "e1", {"x": 1}, asked_at_ms=0, decision_reason="random")
        >>> store.find(event_id="e1").request_id, store.find(request_id="nope"), len(store)
        ('r1', None, 1)
        """
        if request_id is not None and request_id in self._pending:
            return self._pending[request_id]
        if event_id is not None and event_id in self._pending_by_event:
            return self._pending[self._pending_by_event[event_id]]
        return None

    def knows_event(self, event_id: str) -> bool:
        """Whether a request for ``event_id`` is pending or was recently answered or expired."""
        return event_id in self._pending_by_event or self.closed.knows_event(event_id)

    def knows_events(self, event_ids: Sequence[str]) -> list[bool]:
        """``knows_event`` of each id (one call for a run of events)."""
        pending = self._pending_by_event
        closed = self.closed.knows_events(event_ids)
        return [event_id in pending or was for event_id, was in zip(event_ids, closed, strict=True)]

    def add(
        self,
        request_id: str,
        event_id: str,
        features: Features,
        asked_at_ms: int,
        decision_reason: str,
        predicted_label: ClassLabel | None = None,
        ask_proba: float | None = None,
    ) -> list[Expired]:
        """Start waiting for a label; return the entries evicted to make room (oldest first).

        ``ask_proba`` is the probability with which the request was made (``Decision.ask_proba``), kept
        for the label's inverse-probability weight. Adding a request id that is already pending changes
        nothing (a replayed ask).

        >>> store = PendingStore(max_size=2, ttl_ms=1000)
        >>> _ = store.add("r1", "e1", {"x": 1.0}, 0, "informative", ask_proba=0.3)
        >>> store.join(now_ms=10, event_id="e1").entry.ask_proba
        0.3
        """
        if request_id in self._pending:
            return []
        self.closed.forget(request_id)
        entry = PendingEntry(
            request_id,
            event_id,
            features,
            asked_at_ms,
            asked_at_ms + self.ttl_ms,
            decision_reason,
            predicted_label,
            ask_proba,
        )
        self._pending[request_id] = entry
        self._pending_by_event[event_id] = request_id
        evicted = []
        while len(self._pending) > self.max_size:
            oldest = next(iter(self._pending.values()))
            self._close(oldest, JoinStatus.EXPIRED)
            evicted.append(Expired(oldest, ExpiryReason.EVICTED))
        return evicted

    def add_entry(self, entry: PendingEntry) -> list[Expired]:
        """``add`` the request ``entry`` describes (a journal's, a log's: it expires by this TTL)."""
        return self.add(
            entry.request_id,
            entry.event_id,
            entry.features,
            entry.asked_at_ms,
            entry.decision_reason,
            entry.predicted_label,
            entry.ask_proba,
        )

    def join(self, now_ms: int, *, request_id: str | None = None, event_id: str | None = None) -> JoinResult:
        """Match a label with its request by ``request_id`` (preferred) or ``event_id``.

        A ``learned`` result removes the entry: a second label for it is a ``duplicate``.
        """
        found = self._locate(request_id, event_id)
        if not isinstance(found, PendingEntry):
            return JoinResult(found)
        if now_ms >= found.expires_at_ms:  # not swept by ``expire`` yet
            self._close(found, JoinStatus.EXPIRED)
            return JoinResult(JoinStatus.EXPIRED, found)
        self._close(found, JoinStatus.DUPLICATE)
        return JoinResult(JoinStatus.LEARNED, found, now_ms - found.asked_at_ms)

    def peek(
        self, now_ms: int, *, request_id: str | None = None, event_id: str | None = None
    ) -> PendingEntry | None:
        """The entry ``join`` would learn, left pending; ``None`` when ``join`` would not learn one.

        A label is learned first and joined after, so that one the model refuses leaves its request
        open for a correct one.

        >>> store = PendingStore(max_size=2, ttl_ms=1000)
        >>> _ = store.add("r1", "e1", {"x": 1}, asked_at_ms=0, decision_reason="random")
        >>> store.peek(10, event_id="e1").request_id, store.peek(1000, event_id="e1"), len(store)
        ('r1', None, 1)
        """
        found = self._locate(request_id, event_id)
        return found if isinstance(found, PendingEntry) and now_ms < found.expires_at_ms else None

    def _locate(self, request_id: str | None, event_id: str | None) -> PendingEntry | JoinStatus:
        """The pending entry a label names, else what a label for it gets (closed or unknown).

        A known ``request_id`` (pending or closed) wins; else the event's pending, then closed, request.
        """
        if request_id is not None:
            if request_id in self._pending:
                return self._pending[request_id]
            closed = self.closed.status_of_request(request_id)
            if closed is not None:
                return closed
        if event_id is not None:
            if event_id in self._pending_by_event:
                return self._pending[self._pending_by_event[event_id]]
            closed = self.closed.status_of_event(event_id)
            if closed is not None:
                return closed
        return JoinStatus.UNKNOWN

    def expire(self, now_ms: int) -> list[Expired]:
        """Remove and return the entries whose TTL has passed at ``now_ms``, oldest first."""
        expired = []
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if now_ms < oldest.expires_at_ms:
                break
            self._close(oldest, JoinStatus.EXPIRED)
            expired.append(Expired(oldest, ExpiryReason.TTL))
        return expired

    def _close(self, entry: PendingEntry, status: JoinStatus) -> None:
        """Move an entry from pending to closed; ``status`` is what a later label for it gets."""
        del self._pending[entry.request_id]
        if self._pending_by_event.get(entry.event_id) == entry.request_id:
            del self._pending_by_event[entry.event_id]
        self.closed.add(entry.request_id, entry.event_id, status)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Stores pickled before ``closed`` kept their closed ids in an LRU of strings: carried over.
        legacy = state.pop("_closed", None)
        state.pop("_closed_by_event", None)
        self.__dict__.update(state)
        if legacy is not None:
            self.closed = ClosedRequests(self.closed_max, tuple(JoinStatus))
            for request_id, (event_id, status) in legacy.items():
                self.closed.add(request_id, event_id, status)
