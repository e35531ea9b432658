"""The memory of closed label requests: answered or expired ids, in memory allocated once.

The pending store remembers the last ``capacity`` requests that left it, so that a second label for one
is told apart (``duplicate``, ``expired``) from a label nobody asked for (``unknown``). A month-long run
closes millions of requests; the memory keeps the newest ``capacity`` and forgets the oldest first.

Why not a dict of ids: that costs ~420 bytes a remembered id (two strings, a tuple and two dict entries;
measured in ``benchmarks/long_run.py``), allocated as ids arrive, so the process grew by ~42 MB over the
first million events at 10% before the bound was reached. Here each id is kept as a 64-bit BLAKE2b digest
(of its UTF-8 bytes) in arrays sized once, at start: a ring of the remembered requests in closing order
and two open-addressing tables (linear probing, deletion by backward shift; Knuth, TAOCP vol. 3, 6.4,
Algorithm R) from a request's and an event's digest to its place in the ring. About 105 bytes a remembered
id at the default bound, and a resident size that does not move with the stream. Two ids whose digests
collide are taken as one; among 100,000 remembered ids the chance of any collision is about 3·10⁻¹⁰.

Every event is checked against the memory (is it a replay of one asked about?), and a BLAKE2b digest
costs about 1 µs in Python: a counting filter indexed by the event id's CRC-32 (16 one-byte counters a
remembered id, ~0.1 µs) answers most events "not remembered" without it (a counting Bloom filter with
one hash; Fan, Cao, Almeida & Broder, IEEE/ACM ToN 8(3), 2000). Counters stop at 255 and then stay: a
stuck counter only sends more events to the exact check.

>>> from activestream.join import JoinStatus
>>> closed = ClosedRequests(capacity=2, statuses=tuple(JoinStatus))
>>> closed.add("r1", "e1", JoinStatus.DUPLICATE)
>>> closed.add("r2", "e2", JoinStatus.EXPIRED)
>>> closed.status_of_request("r1"), closed.status_of_event("e2")
(<JoinStatus.DUPLICATE: 'duplicate'>, <JoinStatus.EXPIRED: 'expired'>)
>>> closed.add("r3", "e3", JoinStatus.DUPLICATE)  # full: the oldest is forgotten
>>> closed.status_of_request("r1"), len(closed)
(None, 2)
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from hashlib import blake2b as _blake2b
from typing import Any
from zlib import crc32

__all__ = ["ClosedRequests", "digest"]

_EMPTY = 0  # no key: a digest of 0 is stored as 1


def digest(identifier: str) -> int:
    """A request's or event's 64-bit key: BLAKE2b of its UTF-8 bytes, stable across processes.

    (Python's ``hash`` of a string changes with every process, and keys are checkpointed.)

    >>> digest("r1") == digest("r1") != digest("r2"), 0 < digest("r1") < 2**64
    (True, True)
    """
    key = int.from_bytes(_blake2b(identifier.encode(), digest_size=8).digest(), "little")
    return key or 1


class _Table:
    """An open-addressing map from a non-zero 64-bit key to a ring position, of fixed size."""

    def __init__(self, size: int) -> None:
        self._mask = size - 1  # size is a power of two
        self._keys = array("Q", bytes(8 * size))
        self._values = array("i", bytes(4 * size))

    def _index(self, key: int) -> int:
        """Where ``key`` is, or the empty place it would go."""
        keys, mask = self._keys, self._mask
        i = key & mask
        while keys[i] != _EMPTY and keys[i] != key:
            i = (i + 1) & mask
        return i

    def get(self, key: int) -> int:
        i = self._index(key)
        return self._values[i] if self._keys[i] == key else -1

    def put(self, key: int, value: int) -> None:
        i = self._index(key)
        self._keys[i], self._values[i] = key, value

    def delete(self, key: int) -> None:
        keys, values, mask = self._keys, self._values, self._mask
        hole = self._index(key)
        if keys[hole] != key:
            return
        j = hole
        while True:  # shift back the entries of the run behind the hole that may not stay past it
            j = (j + 1) & mask
            if keys[j] == _EMPTY:
                break
            home = keys[j] & mask
            stays = (hole < home <= j) if hole <= j else (home > hole or home <= j)
            if not stays:
                keys[hole], values[hole] = keys[j], values[j]
                hole = j
        keys[hole] = _EMPTY


class ClosedRequests:
    """The newest ``capacity`` closed requests: each one's status for a later label, by request or event.

    The status is what a later label for the request gets, one of ``statuses`` (the pending store passes
    ``JoinStatus``'s members, and ``duplicate`` for an answered request, ``expired`` for one that expired
    or was evicted). An event asked about twice (a replay under a new request id) is known by its newest
    request.

    Pickled compactly (the remembered digests in closing order, ~21 bytes an id) and rebuilt on loading:

    >>> import pickle
    >>> from activestream.join import JoinStatus
    >>> closed = ClosedRequests(capacity=3, statuses=tuple(JoinStatus))
    >>> for i in range(5):
    ...     closed.add(f"r{i}", f"e{i}", JoinStatus.DUPLICATE)
    >>> closed.forget("r3")
    >>> copy = pickle.loads(pickle.dumps(closed))
    >>> [copy.status_of_request(f"r{i}") is not None for i in range(5)], copy.knows_event("e4")
    ([False, False, True, False, True], True)
    """

    def __init__(self, capacity: int, statuses: tuple[Any, ...]) -> None:
        if capacity < 1 or not 0 < len(statuses) < 256:
            raise ValueError(f"need a positive capacity and 1-255 statuses, got {capacity}, {len(statuses)}")
        self.capacity, self.statuses = capacity, statuses
        size = 1 << max(3, (2 * capacity - 1).bit_length())  # a power of two ≥ 2·capacity: load ≤ 1/2
        self._by_request, self._by_event = _Table(size), _Table(size)
        self._requests = array("Q", bytes(8 * capacity))  # the ring, in closing order
        self._events = array("Q", bytes(8 * capacity))
        self._codes = bytearray(capacity)  # 0: a free place; else 1 + the status's index
        self._event_crcs = array("I", bytes(4 * capacity))
        self._filter = bytearray(1 << max(4, (16 * capacity - 1).bit_length()))  # ≥ 16 counters an id
        self._filter_mask = len(self._filter) - 1
        self._next = 0  # the place the next closed request takes (its oldest when the ring is full)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, request_id: str, event_id: str, status: Any) -> None:
        """Remember a request that left the pending store; the oldest is forgotten when full."""
        event = event_id.encode()
        self._add(digest(request_id), digest(event_id), self.statuses.index(status) + 1, crc32(event))

    def _add(self, request: int, event: int, code: int, event_crc: int) -> None:
        self._forget_place(self._next)
        self._forget_place(self._by_request.get(request))  # closed again under the same id
        place = self._next
        self._requests[place], self._events[place], self._codes[place] = request, event, code
        self._event_crcs[place] = event_crc
        counter = event_crc & self._filter_mask
        if self._filter[counter] < 255:
            self._filter[counter] += 1
        self._by_request.put(request, place)
        self._by_event.put(event, place)
        self._next = (place + 1) % self.capacity
        self._count += 1

    def forget(self, request_id: str) -> None:
        """Forget a request (it is pending again: asked anew under the same id)."""
        self._forget_place(self._by_request.get(digest(request_id)))

    def _forget_place(self, place: int) -> None:
        if place < 0 or not self._codes[place]:
            return
        self._by_request.delete(self._requests[place])
        event = self._events[place]
        if self._by_event.get(event) == place:  # a newer request for the same event keeps its entry
            self._by_event.delete(event)
        self._codes[place] = 0
        self._count -= 1
        counter = self._event_crcs[place] & self._filter_mask
        if self._filter[counter] < 255:  # a counter that reached 255 may count more ids than it says
            self._filter[counter] -= 1

    def status_of_request(self, request_id: str) -> Any:
        """The status of a remembered request; ``None`` if it is not remembered."""
        return self._status_at(self._by_request.get(digest(request_id)))

    def status_of_event(self, event_id: str) -> Any:
        """The status of the newest remembered request for an event; ``None`` if there is none."""
        return self._status_at(self._by_event.get(digest(event_id)))

    def knows_event(self, event_id: str) -> bool:
        """Whether a remembered request was for ``event_id``. Asked for every event (the hot path): the
        counting filter first, then the table, probed inline."""
        encoded = event_id.encode()
        if not self._filter[crc32(encoded) & self._filter_mask]:
            return False
        key = int.from_bytes(_blake2b(encoded, digest_size=8).digest(), "little") or 1
        table = self._by_event
        keys, mask = table._keys, table._mask
        i = key & mask
        while True:
            found = keys[i]
            if found == key:
                return bool(self._codes[table._values[i]])
            if found == _EMPTY:
                return False
            i = (i + 1) & mask

    def knows_events(self, event_ids: Iterable[str]) -> list[bool]:
        """``knows_event`` of each id, the counting filter tried inline (most ids are not there)."""
        counters, mask, knows = self._filter, self._filter_mask, self.knows_event
        return [bool(counters[crc32(e.encode()) & mask]) and knows(e) for e in event_ids]

    def count(self, status: Any) -> int:
        """How many remembered requests have ``status`` (e.g. the answered ones: labels learned).

        The ids themselves are not kept, only their digests: ask about an id (``status_of_request``).

        >>> from activestream.join import JoinStatus
        >>> closed = ClosedRequests(capacity=3, statuses=tuple(JoinStatus))
        >>> for i, status in enumerate([JoinStatus.DUPLICATE, JoinStatus.EXPIRED, JoinStatus.DUPLICATE]):
        ...     closed.add(f"r{i}", f"e{i}", status)
        >>> closed.count(JoinStatus.DUPLICATE), closed.count(JoinStatus.UNKNOWN)
        (2, 0)
        """
        return self._codes.count(self.statuses.index(status) + 1)

    def _status_at(self, place: int) -> Any:
        return self.statuses[self._codes[place] - 1] if place >= 0 and self._codes[place] else None

    def __getstate__(self) -> dict[str, Any]:
        order = [(self._next + i) % self.capacity for i in range(self.capacity)]
        live = [place for place in order if self._codes[place]]
        return {
            "capacity": self.capacity,
            "statuses": self.statuses,
            "requests": array("Q", (self._requests[p] for p in live)),
            "events": array("Q", (self._events[p] for p in live)),
            "codes": bytes(self._codes[p] for p in live),
            "event_crcs": array("I", (self._event_crcs[p] for p in live)),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["capacity"], state["statuses"])  # type: ignore[misc]
        columns = state["requests"], state["events"], state["codes"], state["event_crcs"]
        for request, event, code, event_crc in zip(*columns, strict=True):
            self._add(request, event, code, event_crc)
