"""A simulated annotator: answers label requests from ground truth after a delay.

The delay's unit is the caller's. The demo counts it in *events*: a request for the event at stream
position ``p`` is answered once the stream has reached position ``p + delay``, the delay
``activestream.evaluate.prequential`` simulates. ``activestream annotate``, which cannot see the stream,
counts it in seconds of a clock. The scheduling is a pure object (the time or position comes in as an
argument, nothing reads a clock); ``run_annotator`` is the thin loop that feeds it from the label-requests
topic and posts its answers to the labels topic.

In events, with a fixed delay (the demo's):

>>> truth = {"ev-0000010": True, "ev-0000020": False}
>>> annotator = SimulatedAnnotator(truth, delay=500, fixed=True)
>>> annotator.on_request(LabelRequestView("r-1", "ev-0000010"), now=10)
>>> annotator.on_request(LabelRequestView("r-2", "ev-0000020"), now=20)
>>> annotator.due(now=509)
[]
>>> [(label.event_id, label.label) for label in annotator.due(now=510)]
[('ev-0000010', True)]
>>> annotator.waiting
1

In seconds, with an exponential delay of mean 1 s drawn from a seeded generator:

>>> annotator = SimulatedAnnotator({"e-1": True, "e-2": False}, delay=1.0, seed=7)
>>> annotator.on_request(LabelRequestView("r-1", "e-1"), now=0.0)
>>> annotator.on_request(LabelRequestView("r-2", "e-2"), now=0.0)
>>> annotator.due(now=0.0)
[]
>>> sorted((label.event_id, label.label) for label in annotator.due(now=60.0))
[('e-1', True), ('e-2', False)]
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from activestream.messages import Label, LabelRequest, to_json
from activestream.transport.base import Consumer, Producer
from activestream.types import ClassLabel

__all__ = ["LabelRequestView", "SimulatedAnnotator", "run_annotator"]


@dataclass(frozen=True, slots=True)
class LabelRequestView:
    """The two fields of a label request an annotator needs to answer it."""

    request_id: str
    event_id: str


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    request: LabelRequestView = field(compare=False)
    since: float = field(compare=False)


class SimulatedAnnotator:
    """Labels each requested event with its true label after a delay.

    Parameters
    ----------
    truth
        Event id → true label, filled by the replayer.
    delay
        The answer delay, in the unit of the ``now`` arguments (events of a stream position, or seconds of
        a clock): exactly this when ``fixed``, else the mean of an exponential draw. 0 answers at once.
    error_rate
        Probability of answering a wrong label (a noisy oracle), drawn among the labels seen so far.
    seed
        Seeds the delays and the errors.
    fixed
        Every answer takes exactly ``delay`` (no draw).

    >>> SimulatedAnnotator({}, delay=-1)
    Traceback (most recent call last):
    ...
    ValueError: the annotator's delay must be >= 0, got -1
    """

    def __init__(
        self,
        truth: Mapping[str, ClassLabel],
        delay: float = 1.0,
        error_rate: float = 0.0,
        seed: int | None = None,
        name: str = "simulated",
        *,
        fixed: bool = False,
    ):
        if not delay >= 0:
            raise ValueError(f"the annotator's delay must be >= 0, got {delay}")
        if not 0 <= error_rate <= 1:
            raise ValueError(f"the annotator's error rate must be in [0, 1], got {error_rate}")
        self.truth = truth
        self.delay = delay
        self.fixed = fixed
        self.error_rate = error_rate
        self.name = name
        self._rng = random.Random(seed)
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self._answered: set[str] = set()
        self._classes: list[ClassLabel] = []
        self._delays_sum = 0.0
        self._delays_count = 0
        #: Requests for events missing from ``truth``, left unanswered (``activestream annotate --events``
        #: knows the first events of a stream only; one past them says the stream went further).
        self.unknown = 0

    def on_request(self, request: LabelRequest | LabelRequestView, now: float) -> None:
        """Schedule an answer ``delay`` after ``now``; a request seen again (a replay) is answered once.

        >>> annotator = SimulatedAnnotator({"e-1": 1}, delay=3, fixed=True)
        >>> annotator.on_request(LabelRequestView("r-1", "e-1"), now=0)
        >>> annotator.on_request(LabelRequestView("r-1", "e-1"), now=2)
        >>> [label.request_id for label in annotator.due(now=100)]
        ['r-1']
        """
        if request.request_id in self._answered:
            return
        if request.event_id not in self.truth:
            self.unknown += 1
            return
        self._answered.add(request.request_id)
        self._seq += 1
        view = LabelRequestView(request.request_id, request.event_id)
        heapq.heappush(self._queue, _Scheduled(now + self._draw(), self._seq, view, now))

    def due(self, now: float) -> list[Label]:
        """The labels whose delay has passed at ``now``, in the order they fall due."""
        labels = []
        while self._queue and self._queue[0].due <= now:
            scheduled = heapq.heappop(self._queue)
            request = scheduled.request
            if now < math.inf:
                self._delays_sum += now - scheduled.since
                self._delays_count += 1
            labels.append(
                Label(
                    request_id=request.request_id,
                    event_id=request.event_id,
                    label=self._answer(request.event_id),
                    annotator=self.name,
                )
            )
        return labels

    @property
    def waiting(self) -> int:
        """Requests received but not answered yet."""
        return len(self._queue)

    @property
    def received(self) -> int:
        """Requests received for events it knows (each once), answered or waiting."""
        return len(self._answered)

    @property
    def mean_answer_delay(self) -> float | None:
        """The mean delay the answers actually had, from each request's ``now`` to the ``now`` it was
        answered at (``None`` before any; answers at an infinite ``now``, a final flush, are left out).
        It exceeds ``delay`` when ``due`` is called late.

        >>> annotator = SimulatedAnnotator({"e-1": 1, "e-2": 0}, delay=10, fixed=True)
        >>> annotator.on_request(LabelRequestView("r-1", "e-1"), now=0)
        >>> annotator.on_request(LabelRequestView("r-2", "e-2"), now=5)
        >>> len(annotator.due(now=16)), annotator.mean_answer_delay
        (2, 13.5)
        """
        return self._delays_sum / self._delays_count if self._delays_count else None

    def _draw(self) -> float:
        if self.fixed or self.delay == 0:
            return self.delay
        return self._rng.expovariate(1 / self.delay)

    def _answer(self, event_id: str) -> ClassLabel:
        y = self.truth[event_id]
        if y not in self._classes:
            self._classes.append(y)
        others = [c for c in self._classes if c != y]
        if others and self._rng.random() < self.error_rate:
            return self._rng.choice(others)
        return y


def run_annotator(
    consumer: Consumer,
    producer: Producer,
    labels_topic: str,
    annotator: SimulatedAnnotator,
    stop: threading.Event,
    poll_timeout_s: float = 0.2,
    ready: threading.Event | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    requested_at: Callable[[LabelRequest], float] | None = None,
) -> int:
    """Answer label requests until ``stop`` is set; returns the number of labels posted.

    ``clock`` says what time it is, in the annotator's unit (default: seconds of ``time.monotonic``;
    the demo passes the stream's position). A request's delay counts from ``requested_at(request)``
    (the demo: its event's position in the stream), by default from ``clock()`` when it is read.

    Give it a producer of its own: it flushes after posting, which waits for whatever else the producer
    carries. ``ready`` is set once the consumer has joined its group and owns partitions. Labels are keyed by
    event id, like the requests, so a label lands on the partition that owns its
    event (the service's label join relies on this co-partitioning).
    """
    posted = 0
    while not stop.is_set():
        messages = consumer.poll(poll_timeout_s, 500)
        if ready is not None and not ready.is_set() and consumer.assignment():
            ready.set()
        for message in messages:
            try:
                request = LabelRequest.model_validate_json(message.value or b"")
            except ValidationError:
                continue  # not a request this annotator can answer; the service never sends one
            annotator.on_request(request, clock() if requested_at is None else requested_at(request))
        labels = annotator.due(clock())
        for label in labels:
            producer.produce(labels_topic, to_json(label), key=label.event_id.encode())
        if labels:
            producer.flush(30.0)
            posted += len(labels)
    return posted
