"""The training log: labeled examples, one record each, that every replica learns in the same order.

With several replicas each joins the labels of its own partitions, so each alone would learn a share of
them. With ``ACTIVESTREAM_TRAINING_TOPIC`` set, the replica that joins a label does not learn it: it
appends the labeled example (the event's features, the label, and how it was asked) to that topic, which
has one partition. Every replica reads the topic from where its checkpoint stands and learns each record
through its engine, once by request id: the same examples in the same order give every replica the same
model, drift arms and accuracy estimates (Kafka as the replicated log, as Kafka Streams keeps state in
changelog topics). A new replica reads it from the start.

A record is JSON: the request's and event's ids, the features in the event's order (river sums a linear
model's terms in that order), the label, and the decision data the accuracy estimates need. Floats go
through Python's shortest round-trip repr, so every replica reads back the same bits.

>>> from activestream.join import PendingEntry
>>> entry = PendingEntry("r-1", "e-1", {"x": 0.1, "c": "a"}, 5, 99, "informative", True, ask_proba=0.25)
>>> record = training_record(entry, False, "training")
>>> record.topic, record.key
('training', b'r-1')
>>> example = parse_example(record.value)
>>> example.entry.features == entry.features, example.label, example.entry.ask_proba
(True, False, 0.25)
>>> parse_example(b'{"request_id": 1}')
Rejection(reason=<RejectReason.SCHEMA: 'schema'>, detail='training record: ...')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from activestream.engine.step import Record
from activestream.join import PendingEntry
from activestream.messages import Rejection, RejectReason
from activestream.types import ClassLabel

__all__ = ["Example", "parse_example", "training_record"]

#: Fields of a training record, with the JSON types each accepts.
_FIELDS: Final = {
    "request_id": (str,),
    "event_id": (str,),
    "features": (dict,),
    "label": (str, int, bool),
    "asked_at_ms": (int,),
    "decision_reason": (str,),
}


@dataclass(frozen=True, slots=True)
class Example:
    """A labeled example read from the training log: the request as it was asked, and its label."""

    entry: PendingEntry
    label: ClassLabel


def training_record(entry: PendingEntry, label: ClassLabel, topic: str) -> Record:
    """The training-log record of ``entry`` answered with ``label`` (keyed by the request id)."""
    value = {
        "request_id": entry.request_id,
        "event_id": entry.event_id,
        "features": entry.features,
        "label": label,
        "asked_at_ms": entry.asked_at_ms,
        "decision_reason": entry.decision_reason,
        "predicted_label": entry.predicted_label,
        "ask_proba": entry.ask_proba,
    }
    return Record(topic, json.dumps(value, separators=(",", ":")).encode(), entry.request_id.encode())


def parse_example(raw: bytes | None) -> Example | Rejection:
    """Read a training-log record back; a ``Rejection`` (never an exception) for anything else."""
    try:
        value: Any = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return Rejection(RejectReason.UNDECODABLE, f"training record: not JSON ({error})")
    problem = _problem(value)
    if problem:
        return Rejection(RejectReason.SCHEMA, f"training record: {problem}")
    ask_proba = value.get("ask_proba")
    entry = PendingEntry(
        value["request_id"],
        value["event_id"],
        value["features"],
        value["asked_at_ms"],
        0,  # (an expiry: the example is learned whenever it is read)
        value["decision_reason"],
        value.get("predicted_label"),
        ask_proba=float(ask_proba) if ask_proba is not None else None,
    )
    return Example(entry, value["label"])


def _problem(value: Any) -> str:
    if not isinstance(value, dict):
        return "not a JSON object"
    for name, types in _FIELDS.items():
        if not isinstance(value.get(name), types):
            return f"{name} missing or not a {' or '.join(t.__name__ for t in types)}"
    ask_proba = value.get("ask_proba")
    if ask_proba is not None and not (isinstance(ask_proba, (int, float)) and math.isfinite(ask_proba)):
        return "ask_proba is not a finite number"
    return ""
