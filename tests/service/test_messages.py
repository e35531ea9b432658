"""Wire schemas: parsing rejects bad input with the right reason and never raises."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.learner import Decision
from activestream.messages import (
    DEFAULT_MAX_STRING_CHARS,
    REQUEST_ID_NAMESPACE,
    Event,
    Label,
    LabelRequest,
    Rejection,
    RejectReason,
    dead_letter_headers,
    export_json_schemas,
    parse_event,
    parse_label,
    request_id_for,
    to_json,
)
from activestream.outgoing import label_request_for, label_request_json


def event_bytes(**fields: object) -> bytes:
    return json.dumps({"id": "e-1", "features": {"x": 1.0}, **fields}).encode()


def test_a_valid_event_keeps_its_feature_types():
    raw = b'{"id": "e-1", "features": {"f": 1.5, "i": 2, "b": true, "s": "north"}, "metadata": {"k": "v"}}'
    event = parse_event(raw)
    assert isinstance(event, Event)
    assert event.features == {"f": 1.5, "i": 2, "b": True, "s": "north"}
    assert type(event.features["b"]) is bool and type(event.features["i"]) is int
    assert event.metadata == {"k": "v"}


def test_event_timestamps_parse_to_datetimes():
    event = parse_event(event_bytes(timestamp="2024-05-01T12:00:00Z"))
    assert event.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert isinstance(parse_event(event_bytes(added_later=1)), Event)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, RejectReason.EMPTY),
        (b"", RejectReason.EMPTY),
        (b"  \n", RejectReason.EMPTY),
        (b"\xff\xfe{}", RejectReason.UNDECODABLE),
        (b'{"id": "e-1", "features": {"x": 1.0}', RejectReason.UNDECODABLE),
        (b'{"id": "\xff", "features": {"x": 1}}', RejectReason.UNDECODABLE),
        (b"[" * 10_000, RejectReason.UNDECODABLE),
        (b'{"id": "e-1", "features": {"x": NaN}}', RejectReason.NON_FINITE),
        (b'{"id": "e-1", "features": {"x": Infinity}}', RejectReason.NON_FINITE),
        (b'{"id": "e-1", "features": {"x": -Infinity}}', RejectReason.NON_FINITE),
        (b'{"id": "e-1", "features": {"x": 1e999}}', RejectReason.NON_FINITE),
        (b'{"id": "e-1", "features": {}}', RejectReason.SCHEMA),
        (b'{"id": "", "features": {"x": 1}}', RejectReason.SCHEMA),
        (b'{"features": {"x": 1}}', RejectReason.SCHEMA),
        (b'{"id": "e-1", "features": {"x": null}}', RejectReason.SCHEMA),
        (b'{"id": "e-1", "features": {"x": [1]}}', RejectReason.SCHEMA),
        (b'{"id": "e-1", "features": {"x": 1}, "metadata": {"k": 1}}', RejectReason.SCHEMA),
        (b'"just a string"', RejectReason.SCHEMA),
    ],
)
def test_bad_events_are_rejected_with_a_reason(raw, reason):
    rejection = parse_event(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is reason
    assert rejection.detail


def test_huge_integers_are_not_finite_features():
    assert parse_event(event_bytes(features={"x": 10**400})).reason is RejectReason.NON_FINITE


def test_oversize_is_checked_before_parsing():
    # Not even JSON: only the size check can have rejected it.
    assert parse_event(b"{" * 101, max_bytes=100).reason is RejectReason.OVERSIZE
    assert isinstance(parse_event(event_bytes(), max_bytes=len(event_bytes())), Event)


def test_max_features_is_a_parse_parameter():
    raw = event_bytes(features={str(i): i for i in range(5)})
    assert isinstance(parse_event(raw, max_features=5), Event)
    assert parse_event(raw, max_features=4).reason is RejectReason.SCHEMA


def test_max_string_chars_bounds_string_feature_values():
    at_limit = event_bytes(features={"city": "p" * 8, "x": 1.0, "flag": True})
    assert isinstance(parse_event(at_limit, max_string_chars=8), Event)
    rejection = parse_event(event_bytes(features={"x": 1.0, "city": "secret-value"}), max_string_chars=8)
    assert isinstance(rejection, Rejection) and rejection.reason is RejectReason.SCHEMA
    assert "'city'" in rejection.detail and "12 characters" in rejection.detail
    assert "limit 8" in rejection.detail and "ACTIVESTREAM_MAX_STRING_CHARS" in rejection.detail
    assert "secret-value" not in rejection.detail


def test_the_string_limit_counts_characters_and_defaults_to_256():
    assert DEFAULT_MAX_STRING_CHARS == 256
    assert isinstance(parse_event(event_bytes(features={"s": "é" * 256})), Event)  # 512 bytes, 256 chars
    assert parse_event(event_bytes(features={"s": "x" * 257})).reason is RejectReason.SCHEMA
    # Only values: numbers, booleans and names are not strings of the limit.
    assert isinstance(parse_event(event_bytes(features={"n" * 300: 1.0}), max_string_chars=1), Event)


def test_the_string_limit_names_a_long_feature_name_shortly():
    rejection = parse_event(event_bytes(features={"n" * 5000: "long"}), max_string_chars=1)
    assert rejection.reason is RejectReason.SCHEMA and len(rejection.detail) < 200


def test_rejection_details_never_quote_the_input():
    rejection = parse_event(b'{"id": "e-1", "features": {"x": "secret-value", "y": [1]}}')
    assert "secret-value" not in rejection.detail


@pytest.mark.parametrize("label", [True, 3, "cat"])
def test_labels_keep_their_json_type(label):
    parsed = parse_label(json.dumps({"request_id": "r-1", "label": label}).encode())
    assert isinstance(parsed, Label)
    assert parsed.label == label and type(parsed.label) is type(label)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"label": 1}', RejectReason.SCHEMA),
        (b'{"request_id": "r-1"}', RejectReason.SCHEMA),
        (b'{"request_id": "", "label": 1}', RejectReason.SCHEMA),
        (b'{"request_id": "r-1", "label": {"class": 1}}', RejectReason.UNEXPECTED_LABEL),
        (b'{"request_id": "r-1", "label": [1]}', RejectReason.UNEXPECTED_LABEL),
        (b'{"request_id": "r-1", "label": null}', RejectReason.UNEXPECTED_LABEL),
        (b'{"request_id": "r-1", "label": 1.5}', RejectReason.UNEXPECTED_LABEL),
        (b'{"request_id": "r-1", "label": NaN}', RejectReason.UNEXPECTED_LABEL),  # no float labels at all
        (b"not json", RejectReason.UNDECODABLE),
        (None, RejectReason.EMPTY),
    ],
)
def test_bad_labels_are_rejected_with_a_reason(raw, reason):
    assert parse_label(raw).reason is reason


def test_a_label_may_name_the_event_only():
    assert parse_label(b'{"event_id": "e-1", "label": "dog", "annotator": "ann"}').event_id == "e-1"


def test_request_ids_are_deterministic_uuids():
    assert request_id_for("e-1") == request_id_for("e-1")
    assert request_id_for("e-1") != request_id_for("e-2")
    # Pinned: changing the namespace would make replays ask again under new ids.
    assert request_id_for("e-1") == "2a99df22-ef9d-5b17-a492-c6f480b64c02"


def test_a_label_request_round_trips_through_json():
    event = Event(id="e-7", features={"x": 1.0, "c": "red"})
    decision = Decision(1, {0: 0.3, 1: 0.7}, 0.88, 0.5, True, "entropy/split", "informative")
    request = label_request_for(event, decision, model_version=4, now_ms=1_000, ttl_ms=5_000)
    parsed = LabelRequest.model_validate_json(to_json(request))
    assert parsed == request
    assert parsed.request_id == request_id_for("e-7")
    assert parsed.probabilities == {"0": 0.3, "1": 0.7}
    assert (parsed.expires_at - parsed.created_at).total_seconds() == 5


_floats = st.one_of(st.floats(), st.sampled_from([0.0, 0.5, 1.0]))
_labels = st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=5), st.none())


@given(
    features=st.dictionaries(
        st.text(min_size=1, max_size=6),
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.integers(-9, 9), st.booleans(), st.text()
        ),
        min_size=1,
        max_size=5,
    ),
    decision=st.builds(
        Decision,
        _labels,
        st.dictionaries(_labels, _floats, max_size=3),
        _floats,
        _floats,
        st.booleans(),
        st.text(max_size=8),
        st.text(max_size=8),
        st.one_of(st.none(), st.floats(0, 1)),
        st.booleans(),
    ),
    model_version=st.integers(0, 10**9),
    now_ms=st.integers(0, 4 * 10**12),
    ttl_ms=st.integers(1, 10**9),
)
def test_the_fast_label_request_json_is_the_models_byte_for_byte(
    features, decision, model_version, now_ms, ttl_ms
):
    """``label_request_json`` (the ask path) writes exactly what ``to_json(label_request_for(...))`` does:
    NaN and infinities as null, datetimes, labels of every type, an untrained model's null prediction."""
    event = Event(id="e-1", features=features)
    kwargs = {"model_version": model_version, "now_ms": now_ms, "ttl_ms": ttl_ms}
    request = label_request_for(event, decision, **kwargs)
    assert label_request_json(event, decision, **kwargs) == (request.request_id, to_json(request))


def test_an_untrained_model_requests_with_no_prediction():
    event = Event(id="e-1", features={"x": 1.0})
    decision = Decision(None, {}, 1.0, 0.5, True, "entropy/split", "informative")
    request = label_request_for(event, decision, model_version=0, now_ms=0, ttl_ms=1)
    assert request.predicted_label is None and request.probabilities == {}


def test_dead_letter_headers_truncate_the_detail():
    headers = dict(dead_letter_headers(Rejection(RejectReason.SCHEMA, "x" * 1000), "labels", 2, 7))
    assert len(headers["activestream.detail"]) == 256
    assert headers["activestream.source.partition"] == b"2"


def test_exported_schemas_match_the_checked_in_copies(tmp_path):
    written = export_json_schemas(tmp_path)
    assert [p.name for p in written] == [
        "event.schema.json",
        "label-request.schema.json",
        "label.schema.json",
        "decision.schema.json",
    ]
    for path in written:
        schema = json.loads(path.read_text())
        assert schema["type"] == "object"
    # docs/schemas is generated with export_json_schemas; regenerate it when a schema changes.
    docs = Path(__file__).resolve().parents[2] / "docs" / "schemas"
    for path in written:
        assert (docs / path.name).read_text() == path.read_text(), f"regenerate docs/schemas/{path.name}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=200)))
def test_parsing_random_bytes_never_raises(raw):
    assert isinstance(parse_event(raw, max_bytes=150), Event | Rejection)
    assert isinstance(parse_label(raw, max_bytes=150), Label | Rejection)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "features", "timestamp", "metadata", "request_id", "event_id", "label"]),
        json_values,
    )
)
def test_parsing_json_shaped_input_never_raises(document):
    raw = json.dumps(document).encode()  # may hold NaN/Infinity, as lenient producers write them
    assert isinstance(parse_event(raw), Event | Rejection)
    assert isinstance(parse_label(raw), Label | Rejection)


@given(st.text(max_size=600))
@settings(max_examples=300)
def test_request_ids_are_rfc_4122_version_5_uuids_of_the_event_id(event_id):
    """The hand-rolled ``request_id_for`` gives exactly ``uuid.uuid5``: ids must not change between
    versions (a replay after an upgrade reuses the ids of requests already out)."""
    assert request_id_for(event_id) == str(uuid.uuid5(REQUEST_ID_NAMESPACE, event_id))
