"""Poison messages: every malformed, hostile or unexpected input is dead-lettered with the right reason
(or counted), the loop never stops for it, and only the dead-letter limits stop the service — when
nearly everything fails, which is a bug or a misconfiguration, not bad data.

Property-based: each generated message comes with the reason it must get (an oracle built from how it
was made), so the tests check *which* reason, not only that nothing raised.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_tools import (
    ServiceProcess,
    committed,
    ensure_topics,
    read_all,
    service_options,
    service_topics,
)
from river import base, naive_bayes

from activestream import messages
from activestream.config import Settings
from activestream.decide.policies import Split
from activestream.learner import ActiveLearner
from activestream.messages import (
    MAX_DETAIL_CHARS,
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    Event,
    Label,
    Rejection,
    RejectReason,
    parse_event,
    parse_label,
    request_id_for,
)
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.base import TopicPartition
from activestream.transport.memory import MemoryBroker

MAX_BYTES = 4000
MAX_FEATURES = 20
#: Planted in every generated value: a rejection's detail must never quote the input.
MARK = "SeCrEt"

OK = None  # the expected "reason" of a message that must be used, not dead-lettered

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
finite = st.one_of(
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6).map(lambda s: MARK + s),
)
good_features = st.dictionaries(names, finite, min_size=1, max_size=MAX_FEATURES)


def dumps(document: object) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


@st.composite
def events(draw) -> tuple[bytes, RejectReason | None]:
    """A raw event and the reason it must be rejected with (``OK``: a valid event)."""
    event_id = MARK + draw(st.text(max_size=10))
    features = draw(good_features)
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "extra_fields",
                "non_finite",
                "huge_int",
                "too_many_features",
                "long_string",
                "no_features",
                "missing_id",
                "missing_features",
                "id_not_a_string",
                "nested_value",
                "null_value",
                "features_not_a_map",
                "not_an_object",
                "truncated",
                "not_utf8",
                "garbage",
                "empty",
                "oversize",
                "deep_nesting",
            ]
        )
    )
    document: dict = {"id": event_id, "features": features}
    if kind == "valid":
        return dumps(document), OK
    if kind == "extra_fields":  # forward compatibility: unknown fields are ignored
        document.update({"future_field": [1, {"a": None}], "metadata": {"k": MARK}})
        return dumps(document), OK
    name = draw(names)
    if kind in ("non_finite", "huge_int"):
        bad = [math.nan, math.inf, -math.inf] if kind == "non_finite" else [10**400, -(10**309)]
        if len(features) >= MAX_FEATURES:  # replace a value: too many features would be "schema" too
            name = draw(st.sampled_from(sorted(features)))
        document["features"][name] = draw(st.sampled_from(bad))
        return dumps(document), RejectReason.NON_FINITE
    if kind == "too_many_features":
        document["features"] = {f"f{i}": i for i in range(MAX_FEATURES + draw(st.integers(1, 30)))}
        return dumps(document), RejectReason.SCHEMA
    if kind == "long_string":  # longer than the default max_string_chars (256), well within MAX_BYTES
        document["features"] = {"x": 1.0, name: MARK + "x" * draw(st.integers(251, 2000))}
        return dumps(document), RejectReason.SCHEMA
    if kind == "no_features":
        document["features"] = {}
        return dumps(document), RejectReason.SCHEMA
    if kind == "missing_id":
        del document["id"]
        return dumps(document), RejectReason.SCHEMA
    if kind == "missing_features":
        del document["features"]
        return dumps(document), RejectReason.SCHEMA
    if kind == "id_not_a_string":
        document["id"] = draw(st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2)))
        return dumps(document), RejectReason.SCHEMA
    if kind == "nested_value":
        document["features"][name] = draw(st.one_of(st.lists(finite, max_size=2), st.just({"k": MARK})))
        return dumps(document), RejectReason.SCHEMA
    if kind == "null_value":
        document["features"][name] = None
        return dumps(document), RejectReason.SCHEMA
    if kind == "features_not_a_map":
        document["features"] = draw(
            st.one_of(st.lists(finite, max_size=3), st.text(max_size=5), st.integers())
        )
        return dumps(document), RejectReason.SCHEMA
    if kind == "not_an_object":
        return dumps(draw(st.one_of(st.lists(finite, max_size=3), finite))), RejectReason.SCHEMA
    if kind == "truncated":
        raw = dumps(document)
        return raw[: draw(st.integers(1, len(raw) - 1))], RejectReason.UNDECODABLE
    if kind == "not_utf8":
        return dumps(document).replace(b'"id"', b'"\xff\xfe"', 1), RejectReason.UNDECODABLE
    if kind == "garbage":  # starts with a byte no JSON document can start with
        first = draw(st.sampled_from(list(b"!#$%&()*+,/:;<=>?@\\^`|~}]")))
        return bytes([first]) + draw(st.binary(max_size=60)), RejectReason.UNDECODABLE
    if kind == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\n\t "])), RejectReason.EMPTY
    if kind == "oversize":
        document["features"]["pad"] = "x" * (MAX_BYTES + draw(st.integers(0, 5000)))
        return dumps(document), RejectReason.OVERSIZE
    # deep_nesting: a recursion bomb inside the size limit
    depth = draw(st.integers(500, 1900))
    return b'{"id": "e", "features": {"x": ' + b"[" * depth + b"]" * depth + b"}}", RejectReason.UNDECODABLE


@st.composite
def labels(draw) -> tuple[bytes, RejectReason | None]:
    """A raw label (naming ``e-known``, asked and pending) and the reason it must be rejected with."""
    kind = draw(
        st.sampled_from(
            [
                "by_request",
                "by_event",
                "float",
                "object",
                "list",
                "null",
                "nan",
                "neither_id",
                "missing_label",
                "empty_request_id",
                "id_not_a_string",
                "truncated",
                "empty",
                "oversize",
            ]
        )
    )
    label = draw(st.one_of(st.booleans(), st.integers(), st.text(max_size=5).map(lambda s: MARK + s)))
    document: dict = {"request_id": request_id_for("e-known"), "event_id": "e-known", "label": label}
    if kind == "by_request":
        del document["event_id"]
        return dumps(document), OK
    if kind == "by_event":
        del document["request_id"]
        return dumps(document), OK
    if kind in ("float", "object", "list", "null", "nan"):
        document["label"] = {
            "float": draw(st.floats(allow_nan=False).filter(lambda f: not f.is_integer() or math.isinf(f))),
            "object": {"class": MARK},
            "list": [label],
            "null": None,
            "nan": math.nan,
        }[kind]
        return dumps(document), RejectReason.UNEXPECTED_LABEL
    if kind == "neither_id":
        return dumps({"label": label, "annotator": MARK}), RejectReason.SCHEMA
    if kind == "missing_label":
        del document["label"]
        return dumps(document), RejectReason.SCHEMA
    if kind == "empty_request_id":
        return dumps({"request_id": "", "label": label}), RejectReason.SCHEMA
    if kind == "id_not_a_string":
        return dumps({"request_id": draw(st.integers()), "label": label}), RejectReason.SCHEMA
    if kind == "truncated":
        raw = dumps(document)
        return raw[: draw(st.integers(1, len(raw) - 1))], RejectReason.UNDECODABLE
    if kind == "empty":
        return b"", RejectReason.EMPTY
    document["annotator"] = "x" * (MAX_BYTES + draw(st.integers(0, 5000)))
    return dumps(document), RejectReason.OVERSIZE


def assert_readable(rejection: Rejection) -> None:
    assert rejection.detail and len(rejection.detail) <= MAX_DETAIL_CHARS
    assert MARK not in rejection.detail, "a rejection's detail quoted the input"


def check_event(case: tuple[bytes, RejectReason | None]) -> None:
    raw, reason = case
    parsed = parse_event(raw, max_bytes=MAX_BYTES, max_features=MAX_FEATURES)
    if reason is OK:
        assert isinstance(parsed, Event), parsed
        assert 0 < len(parsed.features) <= MAX_FEATURES
        assert all(not isinstance(v, float) or math.isfinite(v) for v in parsed.features.values())
    else:
        assert isinstance(parsed, Rejection), raw[:200]
        assert parsed.reason is reason, (raw[:200], parsed)
        assert_readable(parsed)


def check_label(case: tuple[bytes, RejectReason | None]) -> None:
    raw, reason = case
    parsed = parse_label(raw, max_bytes=MAX_BYTES)
    if reason is OK:
        assert isinstance(parsed, Label)
        assert type(parsed.label) in (bool, int, str)
    else:
        assert isinstance(parsed, Rejection), raw[:200]
        assert parsed.reason is reason, (raw[:200], parsed)
        assert_readable(parsed)


@settings(max_examples=400, deadline=None)
@given(events())
def test_every_bad_event_gets_its_reason_and_no_input_is_quoted(case):
    check_event(case)


@settings(max_examples=300, deadline=None)
@given(labels())
def test_every_bad_label_gets_its_reason_and_no_input_is_quoted(case):
    check_label(case)


def test_oversize_input_is_rejected_before_any_parsing(monkeypatch):
    calls = []

    def spy(raw, *args, **kwargs):
        calls.append(len(raw))
        raise AssertionError("the parser was called")

    monkeypatch.setattr(messages.Event, "model_validate_json", spy)
    monkeypatch.setattr(messages.Label, "model_validate_json", spy)
    monkeypatch.setattr(messages.json, "loads", spy)
    huge = b"{" * 50_000_000  # 50 MB of the worst kind of JSON
    started = time.perf_counter()
    assert parse_event(huge, max_bytes=1_000_000).reason is RejectReason.OVERSIZE
    assert parse_label(huge, max_bytes=1_000_000).reason is RejectReason.OVERSIZE
    assert time.perf_counter() - started < 0.05  # a length check, not a scan
    assert calls == []


# -- the loop, on the in-memory transport ---------------------------------------------------------------


class CountingNB(base.Classifier):
    """Gaussian naive Bayes that counts what it learns (to check nothing is learned twice)."""

    def __init__(self):
        self.inner = naive_bayes.GaussianNB()
        self.learned: list[object] = []

    def learn_one(self, x, y, **kwargs):
        self.learned.append(y)
        self.inner.learn_one(x, y)

    def predict_proba_one(self, x, **kwargs):
        return self.inner.predict_proba_one(x)


def loop_service(broker: MemoryBroker, tmp_path, **overrides) -> Service:
    options = {
        "checkpoint_path": tmp_path / "state.ckpt",
        "max_message_bytes": MAX_BYTES,
        "max_features": MAX_FEATURES,
        "dead_letter_max_ratio": 1.0,
        "dead_letter_max_consecutive": 100_000,
        "max_poll_records": 13,
        **overrides,
    }
    settings_ = Settings(**options)
    learner = ActiveLearner(CountingNB(), policy=Split(1.0, v=1.0, seed=1), seed=1)  # asks every event
    return Service(
        settings_, broker.consumer(settings_.group_id), broker.producer(), broker.admin(), learner=learner
    )


Stream = list[tuple[str, bytes, RejectReason | None]]
streams = st.lists(
    st.one_of(events().map(lambda c: ("events", *c)), labels().map(lambda c: ("labels", *c))), max_size=60
)


def check_stream(directory, stream: Stream) -> None:
    """Run ``stream`` through the loop; check every dead letter's reason, what was learned, the offsets."""
    broker = MemoryBroker()
    service = loop_service(broker, directory)
    producer = broker.producer()
    # The event every label names, asked (budget 1) before the stream starts.
    producer.produce("events", dumps({"id": "e-known", "features": {"x": 1.0}}))
    for topic, raw, _ in stream:
        producer.produce(topic, raw)
    producer.flush(1.0)
    service.start()
    while service.run_once():
        pass

    # The oracle: valid events are asked; the first valid label is learned, later ones are duplicates.
    expected: list[tuple[str, int, RejectReason]] = []
    learned = 0
    offsets = Counter({"events": 1})
    asked = {"e-known"}
    for topic, raw, reason in stream:
        offset = offsets[topic]
        offsets[topic] += 1
        if reason is OK and topic == "labels":
            if learned:
                reason = RejectReason.DUPLICATE
            learned = 1
        elif reason is OK:
            if json.loads(raw)["id"] in asked:
                reason = RejectReason.DUPLICATE  # an event id asked about already
            asked.add(json.loads(raw)["id"])
        if reason is not OK:
            expected.append((topic, offset, reason))
    dead = broker.messages("dead-letters")
    got = [
        (
            dict(m.headers)["activestream.source.topic"].decode(),
            int(dict(m.headers)[SOURCE_OFFSET_HEADER]),
            RejectReason(dict(m.headers)[REASON_HEADER].decode()),
        )
        for m in dead
    ]
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert len(service.learner.classifier.learned) == learned == service.model_version
    for reason, count in Counter(r for _, _, r in expected).items():
        assert service.metrics.value(Metric.DEAD_LETTERS, reason=reason.value) == count
    assert broker.committed(service.settings.group_id).get(("labels", 0), 0) == offsets["labels"]
    assert all(len(m.value) <= MAX_BYTES for m in dead)  # oversize ones were cut to fit
    service.shutdown()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(streams)
def test_the_loop_dead_letters_each_poison_message_with_its_reason_and_never_stops(tmp_path, stream):
    check_stream(tmp_path / str(time.monotonic_ns()), stream)


def test_a_flood_of_duplicate_and_unknown_labels_is_dead_lettered_and_learns_once(tmp_path):
    broker = MemoryBroker()
    service = loop_service(broker, tmp_path)
    producer = broker.producer()
    producer.produce("events", dumps({"id": "e-1", "features": {"x": 1.0}}))
    for i in range(3000):
        producer.produce("labels", dumps({"event_id": "e-1", "label": i % 2 == 0}))
        producer.produce("labels", dumps({"request_id": f"nobody-{i}", "label": True}))
    producer.flush(1.0)
    service.start()
    while service.run_once():
        pass
    assert service.learner.classifier.learned == [True]
    reasons = Counter(dict(m.headers)[REASON_HEADER].decode() for m in broker.messages("dead-letters"))
    assert reasons == {"duplicate": 2999, "unknown_request": 3000}


# -- the dead-letter limits, on the real broker: the process exits non-zero and says why ---------------


@pytest.mark.broker
@pytest.mark.parametrize(
    ("limits", "stream", "says"),
    [
        (
            {"dead_letter_max_consecutive": 50},
            [b"not json"] * 60,
            "51 consecutive messages dead-lettered (more than 50); last reason: undecodable",
        ),
        (
            {"dead_letter_window": 100, "dead_letter_max_ratio": 0.6},
            [b'{"id": "e-%d", "features": {"x": 1}}', b'{"features": {}}', b"\xff"] * 40,
            "of the last 100 messages dead-lettered (above 0.6)",
        ),
    ],
    ids=["consecutive", "ratio"],
)
def test_when_nearly_everything_fails_the_service_stops_with_a_clear_error(
    broker, unique_name, tmp_path, limits, stream, says
):
    bootstrap = broker.bootstrap_servers
    options = service_options(bootstrap, unique_name, tmp_path / "state.ckpt", **limits)
    ensure_topics(bootstrap, service_topics(options))
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i, raw in enumerate(stream):
        producer.send(options["events_topic"], raw.replace(b"%d", str(i).encode()))
    producer.flush(30)
    producer.close()
    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        assert service.wait(60) == 1, service.tail()
    finally:
        service.ensure_stopped()
    failures = [e for e in service.logs() if e.get("message") == "stopping: dead-letter limit exceeded"]
    assert len(failures) == 1 and failures[0]["level"] == "ERROR"
    assert says in failures[0]["reason"]
    assert "Nearly everything failing is a bug or a misconfiguration" in failures[0]["reason"]
    assert "Traceback" not in service.tail() and "exception" not in failures[0]
    # What it dead-lettered is committed and checkpointed: restarted three times, it does not crash-loop
    # over the same messages; every bad message is dead-lettered once, every valid one decided.
    for restart in range(3):
        again = ServiceProcess(options, tmp_path / f"restart-{restart}.log").start()
        try:
            again.wait_assigned()
            time.sleep(1.0)
            assert again.terminate() == 0, again.tail()
        finally:
            again.ensure_stopped()
    sources = [
        dict(m.headers)[SOURCE_OFFSET_HEADER] for m in read_all(bootstrap, options["dead_letter_topic"])
    ]
    assert len(sources) == len(set(sources)) == sum(not raw.startswith(b'{"id"') for raw in stream)
    assert committed(bootstrap, options["group_id"]).get(TopicPartition(options["events_topic"], 0)) == len(
        stream
    )
