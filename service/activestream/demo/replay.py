"""Turn a labeled stream into unlabeled events on a topic, keeping the ground truth aside.

The ground truth never travels with the event: the simulated annotator reads it from the ``truth``
mapping, as a human annotator would read it off the world. Event ids carry the stream position
(``ev-<position>``, see ``event_position``): the demo's annotator counts its label delay in events from it.

>>> from activestream.datasets import sea_abrupt
>>> pairs = list(labeled_events(sea_abrupt(n=3, seed=1)))
>>> [event.id for event, _ in pairs]
['ev-0000000', 'ev-0000001', 'ev-0000002']
>>> sorted(pairs[0][0].features)
['0', '1', '2']
>>> event_position(pairs[2][0].id)
2
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, MutableMapping

from activestream.messages import Event, to_json
from activestream.transport.base import Producer
from activestream.types import ClassLabel, Features

__all__ = ["event_position", "labeled_events", "replay"]


def labeled_events(
    stream: Iterable[tuple[Features, ClassLabel]], prefix: str = "ev"
) -> Iterator[tuple[Event, ClassLabel]]:
    """Events with ids ``<prefix>-<position>`` and their true labels, in stream order."""
    for i, (x, y) in enumerate(stream):
        yield Event(id=f"{prefix}-{i:07d}", features=x), y


def event_position(event_id: str) -> int:
    """The stream position in an id ``labeled_events`` made (0 for the first event).

    >>> event_position("ev-0045311")
    45311
    >>> event_position("order-17")
    Traceback (most recent call last):
    ...
    ValueError: 'order-17' is not an id of the form ev-<position>
    """
    prefix, _, position = event_id.rpartition("-")
    if prefix != "ev" or not position.isdigit():
        raise ValueError(f"{event_id!r} is not an id of the form ev-<position>")
    return int(position)


def replay(
    producer: Producer,
    topic: str,
    pairs: Iterable[tuple[Event, ClassLabel]],
    truth: MutableMapping[str, ClassLabel],
    *,
    rate_per_s: float | None = None,
    stop: threading.Event | None = None,
    flush_every: int = 1000,
) -> int:
    """Produce each event (keyed by its id) and record its label in ``truth``; returns the count sent.

    ``rate_per_s`` paces the replay (``None``: as fast as the producer goes).
    """
    started, sent = time.monotonic(), 0
    for event, y in pairs:
        if stop is not None and stop.is_set():
            break
        truth[event.id] = y
        producer.produce(topic, to_json(event), key=event.id.encode())
        sent += 1
        if sent % flush_every == 0:
            producer.flush(30.0)
        if rate_per_s:
            ahead = sent / rate_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(30.0)
    return sent
