"""The open label requests the labeling page shows, by priority: highest score first, then oldest.

A pure, bounded structure (time comes in as ``now_ms``). A request leaves when it expires, when
``needed`` different annotators have labeled it (the service's ``annotators_per_request``), or when the
structure is full and it has the lowest priority. An annotator never sees a request they labeled
already. Requests are known by request id and by event id, since a label may name either.

>>> from datetime import UTC, datetime
>>> from activestream.messages import LabelRequest
>>> def request(event_id, score, created_ms, ttl_ms=60_000):
...     at = lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC)
...     return LabelRequest(request_id=f"r-{event_id}", event_id=event_id, features={"x": 1},
...         predicted_label=None, probabilities={}, score=score, strategy="s", reason="informative",
...         threshold=0.5, model_version=0, created_at=at(created_ms), expires_at=at(created_ms + ttl_ms))
>>> queue = OpenRequests(needed=2)
>>> for r in (request("a", 0.5, 0), request("b", 0.9, 10), request("c", 0.9, 5)):
...     _ = queue.add(r, now_ms=20)
>>> [r.event_id for r in queue.open(now_ms=20)]
['c', 'b', 'a']
>>> queue.labeled(event_id="c", annotator="ann")
True
>>> [r.event_id for r in queue.open(now_ms=20, annotator="ann")], len(queue)
(['b', 'a'], 3)
>>> queue.labeled(request_id="r-c", annotator="bob"), len(queue)
(True, 2)
>>> [r.event_id for r in queue.open(now_ms=60_001)]  # a expired
['b']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activestream.messages import LabelRequest

__all__ = ["OpenRequests"]


def _ms(request: LabelRequest, name: str) -> int:
    return int(getattr(request, name).timestamp() * 1000)


@dataclass(slots=True)
class _Open:
    request: LabelRequest
    created_ms: int
    expires_ms: int
    annotators: set[str] = field(default_factory=set)

    def priority(self) -> tuple[float, int, str]:
        # Sort key, smallest first: highest score, then oldest, then by id (a total order: stable pages).
        return (-self.request.score, self.created_ms, self.request.request_id)


class OpenRequests:
    """Label requests waiting for annotators.

    Parameters
    ----------
    needed
        Different annotators a request waits for before it leaves the page.
    max_size
        Most requests kept; beyond it the lowest-priority one is dropped.
    """

    def __init__(self, needed: int = 1, max_size: int = 10_000) -> None:
        if needed < 1 or max_size < 1:
            raise ValueError(f"needed and max_size must be >= 1, got {needed} and {max_size}")
        self.needed = needed
        self.max_size = max_size
        self._open: dict[str, _Open] = {}
        self._by_event: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, request: LabelRequest, now_ms: int) -> bool:
        """Start showing ``request``; ``False`` when it is expired or known already (a replay)."""
        expires_ms = _ms(request, "expires_at")
        if request.request_id in self._open or now_ms >= expires_ms:
            return False
        self._open[request.request_id] = _Open(request, _ms(request, "created_at"), expires_ms)
        self._by_event[request.event_id] = request.request_id
        if len(self._open) > self.max_size:
            lowest = max(self._open.values(), key=_Open.priority)
            self._remove(lowest.request.request_id)
        return True

    def get(self, *, request_id: str | None = None, event_id: str | None = None) -> LabelRequest | None:
        """The open request a label names (by request id, else by event id), or ``None``."""
        key = self._key(request_id, event_id)
        return self._open[key].request if key is not None else None

    def labeled(
        self, *, annotator: str | None, request_id: str | None = None, event_id: str | None = None
    ) -> bool:
        """Record a label; the request leaves once ``needed`` annotators answered. ``False``: not open."""
        key = self._key(request_id, event_id)
        if key is None:
            return False
        entry = self._open[key]
        entry.annotators.add(annotator or "anonymous")
        if len(entry.annotators) >= self.needed:
            self._remove(key)
        return True

    def open(self, now_ms: int, annotator: str | None = None, limit: int | None = None) -> list[LabelRequest]:
        """Unexpired requests by priority, without those ``annotator`` labeled already; drops expired ones."""
        for key in [k for k, e in self._open.items() if now_ms >= e.expires_ms]:
            self._remove(key)
        entries = sorted(self._open.values(), key=_Open.priority)
        if annotator:
            entries = [e for e in entries if annotator not in e.annotators]
        return [e.request for e in entries[:limit]]

    def _key(self, request_id: str | None, event_id: str | None) -> str | None:
        if request_id is not None and request_id in self._open:
            return request_id
        if event_id is not None:
            return self._by_event.get(event_id)
        return None

    def _remove(self, request_id: str) -> None:
        entry = self._open.pop(request_id)
        if self._by_event.get(entry.request.event_id) == request_id:
            del self._by_event[entry.request.event_id]
