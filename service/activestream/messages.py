"""Wire schemas: what travels on the events, label-requests, labels and dead-letter topics.

Every record is one UTF-8 JSON object. Parsing never raises on bad input: ``parse_event`` and
``parse_label`` return either the parsed message or a :class:`Rejection` whose ``reason`` is one of the
few :class:`RejectReason` values (a metric label and a dead-letter header).

Class labels travel as JSON scalars (string, integer or boolean) and the model learns the JSON value as
it is: ``true`` is learned as ``True``, ``1`` as ``1``, ``"1"`` as ``"1"``. Keep one type per use case:
``1`` and ``"1"`` are two different classes, while ``1`` and ``true`` are the *same* class to a Python
model (``True == 1``). In a :class:`LabelRequest`, ``predicted_label`` is the model's label as a JSON
scalar and the keys of ``probabilities`` are ``str(label)`` (JSON object keys are strings).

>>> event = parse_event(b'{"id": "e-1", "features": {"price": 3.5, "region": "north"}}')
>>> event.features
{'price': 3.5, 'region': 'north'}
>>> parse_event(b'{"id": "e-1", "features": {"price": NaN}}').reason
<RejectReason.NON_FINITE: 'non_finite'>
>>> parse_label(b'{"event_id": "e-1", "label": true}').label
True
>>> parse_label(b'{"event_id": "e-1", "label": {"class": 1}}').reason
<RejectReason.UNEXPECTED_LABEL: 'unexpected_label'>
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FEATURES",
    "DEFAULT_MAX_STRING_CHARS",
    "DETAIL_HEADER",
    "REASON_HEADER",
    "REQUEST_ID_NAMESPACE",
    "SOURCE_OFFSET_HEADER",
    "SOURCE_PARTITION_HEADER",
    "SOURCE_TOPIC_HEADER",
    "TRUNCATED_HEADER",
    "DecisionRecord",
    "Event",
    "Label",
    "LabelRequest",
    "RejectReason",
    "Rejection",
    "WireLabel",
    "dead_letter_headers",
    "export_json_schemas",
    "fit_dead_letter",
    "json_schemas",
    "parse_event",
    "parse_label",
    "request_id_for",
    "to_json",
]

DEFAULT_MAX_BYTES: Final = 1_000_000
DEFAULT_MAX_FEATURES: Final = 1000
#: Longest string feature value, in characters: each distinct string is a one-hot feature of the model.
DEFAULT_MAX_STRING_CHARS: Final = 256
#: Longest dead-letter detail header, in characters.
MAX_DETAIL_CHARS: Final = 256
#: Fixed namespace of the label-request ids: never change it, or replays would ask again under new ids.
REQUEST_ID_NAMESPACE: Final = uuid.UUID("5d1b2c0e-7a4f-5c8e-9f3b-3a6d0e2f41c7")
_NAMESPACE_BYTES: Final = REQUEST_ID_NAMESPACE.bytes

#: A class label on the wire. Strict: ``1.0`` or ``"true"`` are not silently turned into ``1``/``True``.
WireLabel = StrictBool | StrictInt | StrictStr
#: One feature value; bool first so that JSON ``true`` stays a bool.
FeatureValue = bool | int | float | str
EventId = Annotated[str, Field(min_length=1, max_length=512)]


class RejectReason(StrEnum):
    """Why a message was dead-lettered (a small fixed set: it is a metric label)."""

    OVERSIZE = "oversize"
    UNDECODABLE = "undecodable"
    SCHEMA = "schema"
    NON_FINITE = "non_finite"
    DUPLICATE = "duplicate"
    UNKNOWN_REQUEST = "unknown_request"
    EXPIRED_REQUEST = "expired_request"
    UNEXPECTED_LABEL = "unexpected_label"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that cannot be used, and why; ``detail`` never quotes the input's values."""

    reason: RejectReason
    detail: str


def request_id_for(event_id: str) -> str:
    """The label-request id of an event: deterministic, so a replayed ask reuses the same id.

    >>> request_id_for("e-1") == request_id_for("e-1") != request_id_for("e-2")
    True
    >>> len(request_id_for("e-1"))
    36
    """
    # ``str(uuid.uuid5(REQUEST_ID_NAMESPACE, event_id))`` (RFC 4122 §4.3, as in CPython's uuid module),
    # without building a UUID object: a third of the time, on every ask (a test holds the two equal).
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + event_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _check_finite_features(
    features: dict[str, FeatureValue], limit: int, max_string_chars: int = DEFAULT_MAX_STRING_CHARS
) -> dict[str, FeatureValue]:
    if not features:
        raise ValueError("features must not be empty")
    if len(features) > limit:
        raise ValueError(f"too many features: {len(features)} > {limit}")
    for name, value in features.items():
        if isinstance(value, str):
            if len(value) > max_string_chars:
                raise pydantic_core.PydanticCustomError(
                    "feature_string_too_long",
                    "feature {name}: a string of {length} characters > limit {limit} "
                    "(ACTIVESTREAM_MAX_STRING_CHARS)",
                    {"name": repr(name[:64]), "length": len(value), "limit": max_string_chars},
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an integer too large for a float
                finite = False
            if not finite:
                raise pydantic_core.PydanticCustomError(
                    "finite_number", "feature {name} must be a finite number", {"name": name}
                )
    return features


class _Wire(BaseModel):
    # Unknown fields are ignored so that producers can add fields before consumers know them.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class Event(_Wire):
    """One event to score, from the events topic.

    ``features`` maps names to numbers, strings or booleans; it must be non-empty, hold at most
    ``max_features`` entries (the ``max_features`` validation context, 1000 by default), only finite
    numbers and strings of at most ``max_string_chars`` characters (validation context, 256 by default).
    """

    id: EventId = Field(description="Unique event id; the label request id is derived from it.")
    features: dict[str, FeatureValue] = Field(
        description="Feature values by name: finite numbers, strings or booleans."
    )
    timestamp: datetime | None = Field(default=None, description="When the event happened.")
    metadata: dict[str, str] | None = Field(
        default=None, description="Opaque string metadata, not used by the model."
    )

    @field_validator("features")
    @classmethod
    def _features_are_usable(cls, features: dict[str, FeatureValue], info: ValidationInfo) -> Any:
        context = info.context or {}
        return _check_finite_features(
            features,
            context.get("max_features", DEFAULT_MAX_FEATURES),
            context.get("max_string_chars", DEFAULT_MAX_STRING_CHARS),
        )


class LabelRequest(_Wire):
    """A request for the label of one event, to the label-requests topic (keyed by the event id)."""

    request_id: str = Field(description="Deterministic id: uuid5 of the event id in a fixed namespace.")
    event_id: str = Field(description="The event whose label is asked for.")
    features: dict[str, FeatureValue] = Field(description="The event's features, for the annotator.")
    predicted_label: bool | int | str | None = Field(
        description="The model's current prediction (JSON scalar), null for an untrained model."
    )
    probabilities: dict[str, float] = Field(description="Class probabilities keyed by str(label).")
    score: float = Field(description="Informativeness score in [0, 1].")
    strategy: str = Field(description='"<measure>/<policy>" that decided to ask.')
    reason: str = Field(description='Why it was asked: "informative" or "random" (an unbiased sample).')
    threshold: float = Field(description="The policy's threshold when it decided.")
    model_version: int = Field(ge=0, description="Number of labels the model had learned when it asked.")
    created_at: datetime = Field(description="When the request was made.")
    expires_at: datetime = Field(description="Labels arriving after this are dead-lettered as expired.")
    ask_probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "The probability with which the policy asked this event, given its state (weights the label "
            "in the accuracy estimates); null when unknown: a deterministic policy, batch mode, or "
            "requests paused by the stopping criteria."
        ),
    )


class DecisionRecord(_Wire):
    """The audit trail of one decision: why an event was asked about or discarded."""

    event_id: str = Field(description="The event decided on.")
    predicted_label: bool | int | str | None = Field(description="The model's prediction when it decided.")
    ask: bool = Field(description="Whether a label was asked for.")
    score: float = Field(description="Informativeness score in [0, 1].")
    threshold: float = Field(description="The policy's threshold when it decided.")
    strategy: str = Field(description='"<measure>/<policy>" that decided.')
    reason: str = Field(description="The policy's reason: informative, random, below_threshold, over_budget.")
    model_version: int = Field(ge=0, description="Number of labels the model had learned when it decided.")
    ask_probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "The probability with which the policy asks an event with this score, given its state; null "
            "when unknown: a deterministic policy, batch mode, or requests paused by the stopping criteria."
        ),
    )


class Label(_Wire):
    """An annotator's answer, from the labels topic; names the request, the event, or both."""

    request_id: str | None = Field(default=None, min_length=1, description="The label request answered.")
    event_id: str | None = Field(default=None, min_length=1, description="The event labeled.")
    label: WireLabel = Field(description="The class label: a JSON string, integer or boolean.")
    annotator: str | None = Field(default=None, description="Who labeled it.")
    labeled_at: datetime | None = Field(default=None, description="When it was labeled.")

    @model_validator(mode="after")
    def _names_something(self) -> Label:
        if self.request_id is None and self.event_id is None:
            raise ValueError("a label needs a request_id or an event_id")
        return self


def to_json(message: BaseModel) -> bytes:
    """A message as compact UTF-8 JSON bytes, ready to produce.

    >>> to_json(Label(event_id="e-1", label=1))
    b'{"request_id":null,"event_id":"e-1","label":1,"annotator":null,"labeled_at":null}'
    """
    return pydantic_core.to_json(message)


def _describe(error: Any) -> str:
    # Location and message only: the input may be large or sensitive and must not reach headers/logs.
    where = ".".join(str(part) for part in error["loc"]) or "message"
    return f"{where}: {error['msg']}"


def _rejection_for(error: ValidationError, label_field: str | None = None) -> Rejection:
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    types = {e["type"] for e in errors}
    if "json_invalid" in types:
        reason = RejectReason.UNDECODABLE
    elif "finite_number" in types:
        reason = RejectReason.NON_FINITE
        errors = [e for e in errors if e["type"] == "finite_number"][:1]
    elif label_field and any(e["loc"][:1] == (label_field,) and e["type"] != "missing" for e in errors):
        reason = RejectReason.UNEXPECTED_LABEL
    else:
        reason = RejectReason.SCHEMA
    detail = "; ".join(_describe(e) for e in errors[:3])
    return Rejection(reason, detail[:MAX_DETAIL_CHARS])


def _precheck(raw: bytes | None, max_bytes: int) -> Rejection | None:
    # Size first: never spend parsing work (or memory) on an oversize record.
    if raw is None or not raw.strip():
        return Rejection(RejectReason.EMPTY, "empty message (no value)")
    if len(raw) > max_bytes:
        return Rejection(RejectReason.OVERSIZE, f"{len(raw)} bytes > limit {max_bytes}")
    return None


M = TypeVar("M", bound=BaseModel)


def _parse(
    model: type[M], raw: bytes | None, max_bytes: int, context: dict[str, Any] | None, label_field: str | None
) -> M | Rejection:
    rejection = _precheck(raw, max_bytes)
    if rejection is not None:
        return rejection
    try:
        return model.model_validate_json(raw, context=context)  # type: ignore[arg-type]
    except ValidationError as error:
        return _rejection_for(error, label_field)
    except (ValueError, RecursionError) as error:  # belt and braces: parsing must never raise
        return Rejection(RejectReason.UNDECODABLE, type(error).__name__)


def parse_event(
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_features: int = DEFAULT_MAX_FEATURES,
    max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
) -> Event | Rejection:
    """Parse an events-topic record; never raises on bad input.

    >>> parse_event(b'{"id": "e-1", "features": {}}').detail
    'features: Value error, features must not be empty'
    >>> parse_event(b'{"id": "e-1", "features": {"city": "Paris"}}', max_string_chars=4).detail
    "features: feature 'city': a string of 5 characters > limit 4 (ACTIVESTREAM_MAX_STRING_CHARS)"
    >>> parse_event(b"x" * 11, max_bytes=10).reason
    <RejectReason.OVERSIZE: 'oversize'>
    >>> parse_event(b"\\xff").reason
    <RejectReason.UNDECODABLE: 'undecodable'>
    >>> parse_event(None).reason
    <RejectReason.EMPTY: 'empty'>
    """
    context = {"max_features": max_features, "max_string_chars": max_string_chars}
    return _parse(Event, raw, max_bytes, context, None)


def parse_label(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> Label | Rejection:
    """Parse a labels-topic record; never raises on bad input.

    >>> parse_label(b'{"label": 1}').reason
    <RejectReason.SCHEMA: 'schema'>
    >>> parse_label(b'{"request_id": "r-1", "label": 1.5}').reason
    <RejectReason.UNEXPECTED_LABEL: 'unexpected_label'>
    """
    return _parse(Label, raw, max_bytes, None, "label")


#: Dead-letter header names (values are UTF-8).
REASON_HEADER: Final = "activestream.reason"
DETAIL_HEADER: Final = "activestream.detail"
SOURCE_TOPIC_HEADER: Final = "activestream.source.topic"
SOURCE_PARTITION_HEADER: Final = "activestream.source.partition"
SOURCE_OFFSET_HEADER: Final = "activestream.source.offset"
#: Set (to the original size in bytes) when a dead letter's value had to be cut to fit the size limit.
TRUNCATED_HEADER: Final = "activestream.truncated.from"
#: Room kept for the headers when a dead letter's value is cut to fit ``max_bytes`` (a quarter of it at most).
DEAD_LETTER_HEADROOM: Final = 16_384


def fit_dead_letter(value: bytes, max_bytes: int) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """The dead letter's value, cut when it could not be produced, and the header that says so.

    A record at or over the size limit (the reason ``oversize`` exists) cannot be dead-lettered whole:
    producing it would fail and stop the loop. It keeps its first bytes and its source coordinates, so
    the original stays reachable on the source topic for as long as that topic retains it.

    >>> fit_dead_letter(b"abc", 20_000)
    (b'abc', ())
    >>> value, headers = fit_dead_letter(b"x" * 20_000, 20_000)
    >>> len(value), headers
    (15000, (('activestream.truncated.from', b'20000'),))
    """
    limit = max_bytes - min(DEAD_LETTER_HEADROOM, max_bytes // 4)
    if len(value) <= limit:
        return value, ()
    return value[:limit], ((TRUNCATED_HEADER, str(len(value)).encode()),)


def dead_letter_headers(
    rejection: Rejection, topic: str, partition: int, offset: int
) -> tuple[tuple[str, bytes], ...]:
    """The headers a dead-lettered record carries, beside its original bytes as the value.

    >>> dict(dead_letter_headers(Rejection(RejectReason.EMPTY, "no value"), "events", 0, 41))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'activestream.reason': b'empty', 'activestream.detail': b'no value',
     'activestream.source.topic': b'events', 'activestream.source.partition': b'0',
     'activestream.source.offset': b'41'}
    """
    return (
        (REASON_HEADER, rejection.reason.value.encode()),
        (DETAIL_HEADER, rejection.detail[:MAX_DETAIL_CHARS].encode()),
        (SOURCE_TOPIC_HEADER, topic.encode()),
        (SOURCE_PARTITION_HEADER, str(partition).encode()),
        (SOURCE_OFFSET_HEADER, str(offset).encode()),
    )


#: The schema files ``export_json_schemas`` writes, by model; ``docs/schemas`` holds the generated copy.
SCHEMA_FILES: Final[dict[str, type[BaseModel]]] = {
    "event.schema.json": Event,
    "label-request.schema.json": LabelRequest,
    "label.schema.json": Label,
    "decision.schema.json": DecisionRecord,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each wire message, by file name (``activestream schemas`` prints them)."""
    # Requests are produced by the service (serialization view); events and labels are consumed.
    return {
        name: model.model_json_schema(
            mode="serialization" if model in (LabelRequest, DecisionRecord) else "validation"
        )
        for name, model in SCHEMA_FILES.items()
    }


def export_json_schemas(directory: str | Path) -> list[Path]:
    """Write the JSON Schema of each wire message into ``directory``; return the files written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
