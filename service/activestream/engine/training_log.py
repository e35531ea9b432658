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

**Pending requests belong to the group.** A replica also appends each request it makes (an ``ask``
record: the example without its label), before the request reaches the annotators, and a label whose
request it does not hold (asked by another replica, or before a rebalance moved the partition) as a
``label`` record. Every replica keeps the log's open requests (``EngineState.group``) and joins a label
record with them when it reads it: in the log's order, so identically everywhere, and since the ask was
appended before anyone could answer it, the ask always comes first. Only the replica that appended a label
record (``by``) dead-letters it when it joins nothing.

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
>>> ask = parse_example(ask_record(entry, "training").value)
>>> type(ask).__name__, ask.entry.features == entry.features
('Ask', True)
>>> from activestream.messages import Label
>>> source = ("labels", 2, 7, b'{}', None)
>>> record = label_record(Label(event_id="e-1", label=True), source, 120, "a", "training")
>>> answer = parse_example(record.value)
>>> answer.event_id, answer.label, answer.received_at_ms, answer.by, answer.source[:3]
('e-1', True, 120, 'a', ('labels', 2, 7))
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any, Final

from activestream.engine.step import Record
from activestream.join import PendingEntry
from activestream.messages import Label, Rejection, RejectReason
from activestream.types import ClassLabel

__all__ = [
    "Answer",
    "Ask",
    "Example",
    "Source",
    "ask_record",
    "label_record",
    "parse_example",
    "source_key",
    "training_record",
]

#: Where a label was read: topic, partition, offset, value and key (to dead-letter it as it came).
Source = tuple[str, int, int, bytes | None, bytes | None]

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
    """A labeled example read from the training log: the request as it was asked, and its label
    (``label_key``: where the label was read, ``Answer.key``)."""

    entry: PendingEntry
    label: ClassLabel
    label_key: str = ""


@dataclass(frozen=True, slots=True)
class Ask:
    """A request appended to the training log when it was made: open until a label joins it."""

    entry: PendingEntry


@dataclass(frozen=True, slots=True)
class Answer:
    """A label appended to the log by the replica that read it (``by``): its request unknown there, or
    a vote (with several annotators a request every vote goes through the log)."""

    request_id: str | None
    event_id: str | None
    label: ClassLabel
    received_at_ms: int
    by: str
    source: Source
    #: Who labeled it (votes, with several annotators a request, are tallied from the log by name).
    annotator: str | None = None

    @property
    def key(self) -> str:
        """The label message's position: the same label appended twice is joined once."""
        return source_key(self.source)


def training_record(entry: PendingEntry, label: ClassLabel, topic: str, label_key: str = "") -> Record:
    """The training-log record of ``entry`` answered with ``label`` (keyed by the request id), read at
    ``label_key`` (``source_key``): the same label read again by another replica then joins nothing."""
    return _record(entry, topic, label=label, label_key=label_key)


def source_key(source: Source) -> str:
    """Where a label was read, as a key: the same message read twice has the same key.

    >>> source_key(("labels", 2, 7, b"{}", None))
    'label:labels:2:7'
    """
    return f"label:{source[0]}:{source[1]}:{source[2]}"


def ask_record(entry: PendingEntry, topic: str) -> Record:
    """The training-log record of the request ``entry``, made and not answered yet."""
    return _record(entry, topic, kind="ask")


def label_record(label: Label, source: Source, received_at_ms: int, by: str, topic: str) -> Record:
    """The training-log record of a label whose request the replica ``by`` does not hold."""
    src_topic, partition, offset, value, key = source
    record = {
        "kind": "label",
        "request_id": label.request_id,
        "event_id": label.event_id,
        "label": label.label,
        "received_at_ms": received_at_ms,
        "by": by,
        "source": [src_topic, partition, offset, _b64(value), _b64(key)],
        **({"annotator": label.annotator} if label.annotator is not None else {}),
    }
    named = label.request_id or label.event_id or ""
    return Record(topic, json.dumps(record, separators=(",", ":")).encode(), named.encode())


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _record(
    entry: PendingEntry, topic: str, *, label: ClassLabel | None = None, kind: str = "", label_key: str = ""
) -> Record:
    value = {
        "request_id": entry.request_id,
        "event_id": entry.event_id,
        "features": entry.features,
        **({"kind": kind} if kind else {"label": label}),
        "asked_at_ms": entry.asked_at_ms,
        "decision_reason": entry.decision_reason,
        "predicted_label": entry.predicted_label,
        "ask_proba": entry.ask_proba,
        **({"label_key": label_key} if label_key else {}),
    }
    return Record(topic, json.dumps(value, separators=(",", ":")).encode(), entry.request_id.encode())


def parse_example(raw: bytes | None) -> Example | Ask | Answer | Rejection:
    """Read a training-log record back; a ``Rejection`` (never an exception) for anything else."""
    try:
        value: Any = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return Rejection(RejectReason.UNDECODABLE, f"training record: not JSON ({error})")
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind == "label":
        return _answer(value)
    problem = _problem(value, with_label=kind != "ask")
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
    label_key = value.get("label_key")
    if kind == "ask":
        return Ask(entry)
    return Example(entry, value["label"], label_key if isinstance(label_key, str) else "")


def _answer(value: dict[str, Any]) -> Answer | Rejection:
    request_id, event_id, source = value.get("request_id"), value.get("event_id"), value.get("source")
    valid = (
        isinstance(value.get("label"), (str, int, bool))
        and isinstance(value.get("received_at_ms"), int)
        and isinstance(value.get("by"), str)
        and all(isinstance(name, (str, type(None))) for name in (request_id, event_id))
        and (request_id or event_id)
        and isinstance(source, list)
        and len(source) == 5
    )
    if not valid:
        return Rejection(RejectReason.SCHEMA, "training record: not a valid label record")
    try:
        topic, partition, offset = str(source[0]), int(source[1]), int(source[2])
        raw = [None if part is None else base64.b64decode(part) for part in source[3:]]
    except (TypeError, ValueError) as error:
        return Rejection(RejectReason.SCHEMA, f"training record: bad label source ({error})")
    where: Source = (topic, partition, offset, raw[0], raw[1])
    annotator = value.get("annotator")
    named = annotator if isinstance(annotator, str) else None
    return Answer(request_id, event_id, value["label"], value["received_at_ms"], value["by"], where, named)


def _problem(value: Any, *, with_label: bool = True) -> str:
    if not isinstance(value, dict):
        return "not a JSON object"
    for name, types in _FIELDS.items():
        if name == "label" and not with_label:
            continue
        if not isinstance(value.get(name), types):
            return f"{name} missing or not a {' or '.join(t.__name__ for t in types)}"
    ask_proba = value.get("ask_proba")
    if ask_proba is not None and not (isinstance(ask_proba, (int, float)) and math.isfinite(ask_proba)):
        return "ask_proba is not a finite number"
    return ""
