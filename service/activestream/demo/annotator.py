"""A simulated annotator: answers label requests from ground truth after a random delay.

The scheduling is a pure object (time comes in as an argument); ``run_annotator`` is the thin loop that
feeds it from the label-requests topic and posts its answers to the labels topic.

>>> annotator = SimulatedAnnotator({"e-1": True, "e-2": False}, mean_delay_s=1.0, seed=7)
>>> annotator.on_request(LabelRequestView("r-1", "e-1"), now_s=0.0)
>>> annotator.on_request(LabelRequestView("r-2", "e-2"), now_s=0.0)
>>> annotator.due(now_s=0.0)
[]
>>> sorted((label.event_id, label.label) for label in annotator.due(now_s=60.0))
[('e-1', True), ('e-2', False)]
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Mapping
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
    due_s: float
    seq: int
    request: LabelRequestView = field(compare=False)


class SimulatedAnnotator:
    """Labels each requested event with its true label after an exponential delay.

    Parameters
    ----------
    truth
        Event id → true label, filled by the replayer.
    mean_delay_s
        Mean of the exponential answer delay (0 answers at once).
    error_rate
        Probability of answering a wrong label (a noisy oracle), drawn among the labels seen so far.
    seed
        Seeds the delays and the errors.
    """

    def __init__(
        self,
        truth: Mapping[str, ClassLabel],
        mean_delay_s: float = 1.0,
        error_rate: float = 0.0,
        seed: int | None = None,
        name: str = "simulated",
    ):
        self.truth = truth
        self.mean_delay_s = mean_delay_s
        self.error_rate = error_rate
        self.name = name
        self._rng = random.Random(seed)
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self._answered: set[str] = set()
        self._classes: list[ClassLabel] = []

    def on_request(self, request: LabelRequest | LabelRequestView, now_s: float) -> None:
        """Schedule an answer; a request seen again (a replay) is answered once."""
        if request.request_id in self._answered:
            return
        self._answered.add(request.request_id)
        delay = self._rng.expovariate(1 / self.mean_delay_s) if self.mean_delay_s > 0 else 0.0
        self._seq += 1
        view = LabelRequestView(request.request_id, request.event_id)
        heapq.heappush(self._queue, _Scheduled(now_s + delay, self._seq, view))

    def due(self, now_s: float) -> list[Label]:
        """The labels whose delay has passed, oldest first."""
        labels = []
        while self._queue and self._queue[0].due_s <= now_s:
            request = heapq.heappop(self._queue).request
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
) -> int:
    """Answer label requests until ``stop`` is set; returns the number of labels posted.

    ``ready`` is set once the consumer has joined its group and owns partitions. Labels are keyed by
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
            annotator.on_request(request, time.monotonic())
        for label in annotator.due(time.monotonic()):
            producer.produce(labels_topic, to_json(label), key=label.event_id.encode())
            posted += 1
        producer.flush(30.0)
    return posted
