"""The labeling page's routes and JSON API, without sockets (``LabelingApp.handle``) and over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from activestream.labeling import LabelingApp, LabelingServer, OpenRequests, label_choices
from activestream.labeling.server import RequestFeed
from activestream.messages import Label, LabelRequest, to_json
from activestream.transport.errors import DeliveryError
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000
XSS = '<img src=x onerror="alert(1)">'


def request(event_id: str, score: float = 0.5, age_ms: int = 0, **fields) -> LabelRequest:
    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    values = {
        "request_id": f"r-{event_id}",
        "event_id": event_id,
        "features": {"price": 3.5, "region": "north"},
        "predicted_label": True,
        "probabilities": {"True": 0.7, "False": 0.3},
        "score": score,
        "strategy": "entropy/split",
        "reason": "informative",
        "threshold": 0.4,
        "model_version": 2,
        "created_at": at(T0 - age_ms),
        "expires_at": at(T0 - age_ms + 60_000),
        **fields,
    }
    return LabelRequest(**values)


class Posted(list):
    def __init__(self, fail: bool = False):
        super().__init__()
        self.fail = fail

    def __call__(self, label: Label) -> None:
        if self.fail:
            raise DeliveryError([("labels", RuntimeError("down"))])
        self.append(label)


@pytest.fixture
def posted():
    return Posted()


@pytest.fixture
def app(posted):
    app = LabelingApp(OpenRequests(), posted, clock_ms=lambda: T0)
    for r in (
        request("low", 0.2),
        request("high-old", 0.9, age_ms=5000),
        request("high-new", 0.9, age_ms=10),
    ):
        app.add_request(r)
    return app


def post_json(app, payload, **headers):
    return app.handle(
        "POST", "/api/labels", {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()
    )


def test_api_requests_by_score_then_age(app):
    response = app.handle("GET", "/api/requests", {})
    assert response.status == 200
    assert [r["event_id"] for r in response.json["requests"]] == ["high-old", "high-new", "low"]
    assert response.json["total"] == 3
    assert app.handle("GET", "/api/requests?limit=1", {}).json["requests"][0]["event_id"] == "high-old"
    assert app.handle("GET", "/api/requests?limit=x", {}).status == 400


def test_post_a_label_produces_it_and_closes_the_request(app, posted):
    response = post_json(app, {"event_id": "low", "label": False, "annotator": "ann"})
    assert response.status == 201
    assert response.json["label"] is False and response.json["request_id"] == "r-low"
    [label] = posted
    assert (label.event_id, label.label, label.annotator) == ("low", False, "ann")
    assert label.labeled_at.timestamp() * 1000 == T0
    assert "low" not in [r["event_id"] for r in app.handle("GET", "/api/requests", {}).json["requests"]]
    assert post_json(app, {"event_id": "low", "label": True, "annotator": "bob"}).status == 404


def test_free_text_is_typed_like_the_models_labels(app, posted):
    assert post_json(app, {"request_id": "r-low", "label_text": " yes ", "annotator": "ann"}).status == 201
    assert posted[-1].label is True
    app.add_request(request("ints", predicted_label=1, probabilities={"1": 0.6, "0": 0.4}))
    assert post_json(app, {"event_id": "ints", "label_text": "2", "annotator": "ann"}).json["label"] == 2
    app.add_request(request("strs", predicted_label="1", probabilities={"1": 0.6, "0": 0.4}))
    assert post_json(app, {"event_id": "strs", "label_text": "2", "annotator": "ann"}).json["label"] == "2"


@pytest.mark.parametrize(
    ("payload", "headers", "status"),
    [
        ({"event_id": "low", "label": 1.5, "annotator": "ann"}, {}, 400),  # floats are not labels
        ({"event_id": "low", "label": {"a": 1}, "annotator": "ann"}, {}, 400),
        ({"event_id": "low", "label": True}, {}, 400),  # no annotator
        ({"event_id": "low", "label": True, "annotator": "x" * 101}, {}, 400),
        ({"event_id": "low", "label_text": "  ", "annotator": "ann"}, {}, 400),
        ({"event_id": "nobody-asked", "label": True, "annotator": "ann"}, {}, 404),
        ({"event_id": "low", "label": True, "annotator": "ann"}, {"Content-Type": "text/plain"}, 415),
        ({"event_id": "low", "label": True, "annotator": "ann"}, {"Origin": "http://evil.example"}, 403),
    ],
)
def test_bad_posts_are_refused(app, posted, payload, headers, status):
    response = post_json(app, payload, Host="127.0.0.1:8080", **headers)
    assert response.status == status and "error" in response.json
    assert posted == []


def test_same_origin_posts_pass(app):
    ok = post_json(app, {"event_id": "low", "label": True, "annotator": "a"}, Host="h:1", Origin="http://h:1")
    assert ok.status == 201


def test_not_json_and_too_large_bodies(app):
    headers = {"Content-Type": "application/json"}
    assert app.handle("POST", "/api/labels", headers, b"{nope").status == 400
    assert app.handle("POST", "/api/labels", headers, b"[1]").status == 400
    assert app.handle("POST", "/api/labels", headers, b" " * 70_000).status == 413


def test_an_undeliverable_label_is_a_503_and_the_request_stays_open():
    app = LabelingApp(OpenRequests(), Posted(fail=True), clock_ms=lambda: T0)
    app.add_request(request("e"))
    assert post_json(app, {"event_id": "e", "label": True, "annotator": "a"}).status == 503
    assert app.handle("GET", "/api/requests", {}).json["total"] == 1


def test_the_plain_form_posts_and_redirects(app, posted):
    body = b"request_id=r-low&event_id=low&label_json=false&annotator=ann"
    response = app.handle("POST", "/labels", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert response.status == 303 and response.headers["Location"] == "/"
    assert posted[-1].label is False
    response = app.handle("POST", "/labels", {}, b"event_id=gone&label_text=x&annotator=ann")
    assert response.status == 303 and "flash=" in response.headers["Location"]


def test_the_page_escapes_user_data_everywhere(app):
    app.add_request(
        request(
            XSS,
            score=0.99,
            features={XSS: XSS, "ok": 1},
            predicted_label=XSS,
            probabilities={XSS: 0.9, "b": 0.1},
            strategy=XSS,
            reason=XSS,
        )
    )
    response = app.handle("GET", "/?annotator=" + "%22%3E%3Cscript%3E", {})
    page = response.body.decode()
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "<img" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert page.count("<script") == 1  # the one external script, no inline one


def test_the_page_lists_classes_with_keys_and_why_it_was_asked(app):
    page = app.handle("GET", "/", {"Cookie": "activestream_annotator=ann%20e"}).body.decode()
    assert page.index("high-old") < page.index("high-new") < page.index("low")
    assert "<kbd>1</kbd> False" in page and "<kbd>2</kbd> True" in page
    assert "<td>3.5</td>" in page and "<td>&quot;north&quot;</td>" in page
    assert "informative" in page and "entropy/split" in page and "threshold 0.400" in page
    assert 'value="ann e"' in page  # the annotator from the cookie
    assert "5 s ago" in page


def test_static_assets_and_health(app):
    assert app.handle("GET", "/static/app.js", {}).headers["Content-Type"].startswith("text/javascript")
    assert app.handle("GET", "/static/style.css", {}).status == 200
    assert app.handle("GET", "/healthz", {}).json == {"status": "ok"}
    assert app.handle("GET", "/nope", {}).status == 404
    assert app.handle("DELETE", "/api/labels", {}).status == 405


def test_an_annotator_does_not_see_what_they_labeled_and_requests_wait_for_r_annotators(posted):
    app = LabelingApp(OpenRequests(needed=2), posted, clock_ms=lambda: T0)
    app.add_request(request("e"))
    assert post_json(app, {"event_id": "e", "label": True, "annotator": "ann"}).status == 201
    assert app.handle("GET", "/api/requests?annotator=ann", {}).json["total"] == 0
    assert app.handle("GET", "/api/requests?annotator=bob", {}).json["total"] == 1
    app.record_label(Label(event_id="e", label=False, annotator="bob"))  # seen on the labels topic
    assert app.handle("GET", "/api/requests", {}).json["total"] == 0


def test_expired_requests_are_not_shown():
    app = LabelingApp(OpenRequests(), Posted(), clock_ms=lambda: T0 + 61_000)
    assert not app.add_request(request("e"))
    assert app.handle("GET", "/api/requests", {}).json["total"] == 0


def test_label_choices_keep_the_models_label_type():
    choices = label_choices(request("e", predicted_label=2, probabilities={"1": 0.2, "2": 0.5, "3": 0.3}))
    assert [(c.key, c.value) for c in choices] == [(1, 1), (2, 2), (3, 3)]  # by name: stable keys
    many = {str(i): (i + 1) / 66 for i in range(11)}
    assert [c.value for c in label_choices(request("e", predicted_label=0, probabilities=many))] == list(
        range(2, 11)
    )


def test_the_feed_reads_requests_and_labels_from_the_transport(posted):
    broker = MemoryBroker()
    producer = broker.producer()
    producer.produce("label-requests", to_json(request("a")), key=b"a")
    producer.produce("label-requests", to_json(request("b")), key=b"b")
    producer.produce("label-requests", b"not json", key=b"c")
    producer.produce("labels", to_json(Label(event_id="a", label=True, annotator="x")), key=b"a")
    producer.flush(1.0)
    app = LabelingApp(OpenRequests(), posted, clock_ms=lambda: T0)
    feed = RequestFeed(app, broker.consumer("ui"), "label-requests", "labels")
    feed.consumer.subscribe(["label-requests", "labels"])
    while feed.poll_once():
        pass
    assert feed.ready.is_set()
    assert [r["event_id"] for r in app.handle("GET", "/api/requests", {}).json["requests"]] == ["b"]


def test_over_http_with_security_headers(app):
    server = LabelingServer(app, port=0).start()
    try:
        with urllib.request.urlopen(server.url + "/") as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        data = json.dumps({"event_id": "low", "label": True, "annotator": "ann"}).encode()
        post = urllib.request.Request(
            server.url + "/api/labels", data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(post) as response:
            assert response.status == 201
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(post)
        assert error.value.code == 404
    finally:
        server.stop()
