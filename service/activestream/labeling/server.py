"""The labeling page's HTTP server, JSON API and Kafka shell.

Routes:

- ``GET /`` — the page (the annotator's name comes from ``?annotator=`` or the ``activestream_annotator``
  cookie);
- ``GET /api/requests[?annotator=NAME&limit=N]`` — the open requests by priority, as JSON:
  ``{"requests": [<LabelRequest>, ...], "total": N}``;
- ``POST /api/labels`` — JSON ``{"request_id"?, "event_id"?, "annotator", "label"}`` (a JSON string,
  integer or boolean) or ``"label_text"`` instead of ``"label"`` (typed like the model's labels, see
  :func:`~activestream.labeling.classes.parse_label_text`). Answers ``201`` with the ``Label`` posted;
  ``400`` bad input, ``404`` no such open request, ``413`` too large, ``415`` not JSON, ``403``
  cross-origin, ``503`` the label could not be delivered;
- ``POST /labels`` — the same from the plain HTML form (``application/x-www-form-urlencoded``), answered
  with a redirect to ``/``;
- ``GET /static/app.js``, ``GET /static/style.css``, ``GET /healthz``.

Labels are produced to the labels topic keyed by event id (the service's join relies on that
co-partitioning), with ``labeled_at`` set to now. A POST is refused when its ``Origin`` names another
host than the one it was sent to: labels cannot be posted from another site's page.

:class:`LabelingApp` is the transport-free part — a function from (method, path, headers, body) to a
response, over :class:`~activestream.labeling.queue.OpenRequests` and a ``post`` function — so the routes
are tested without sockets. :class:`LabelingServer` serves it with the stdlib ``ThreadingHTTPServer``
and :class:`RequestFeed` keeps it fed from Kafka on a thread of its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import ValidationError

from activestream.labeling.classes import parse_label_text
from activestream.labeling.page import APP_JS, CONTENT_SECURITY_POLICY, STYLE_CSS, render_page
from activestream.labeling.queue import OpenRequests
from activestream.messages import Label, LabelRequest, parse_label, to_json
from activestream.transport.base import Consumer
from activestream.transport.errors import TransportError

__all__ = ["COOKIE", "LabelingApp", "LabelingServer", "RequestFeed", "Response", "run_label_ui"]

log = logging.getLogger(__name__)

COOKIE: Final = "activestream_annotator"
MAX_BODY_BYTES: Final = 64 * 1024
MAX_ANNOTATOR_CHARS: Final = 100
PAGE_LIMIT: Final = 50


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _json(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class _BadInput(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LabelingApp:
    """The routes (see the module docstring), without sockets.

    Parameters
    ----------
    requests
        The open requests (this object locks around them: HTTP threads and the feed share them).
    post
        Delivers one ``Label`` (produces and flushes it); raises ``TransportError`` when it cannot.
    clock_ms
        Wall-clock milliseconds (``labeled_at``, ages and expiry).
    """

    def __init__(
        self,
        requests: OpenRequests,
        post: Callable[[Label], None],
        clock_ms: Callable[[], int] = _wall_clock_ms,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        self.requests = requests
        self._post = post
        self._clock_ms = clock_ms
        self.page_limit = page_limit
        self._lock = threading.Lock()

    # -- the feed ---------------------------------------------------------------------------------------
    def add_request(self, request: LabelRequest) -> bool:
        with self._lock:
            return self.requests.add(request, self._clock_ms())

    def record_label(self, label: Label) -> None:
        """A label seen on the labels topic (ours or another tool's)."""
        with self._lock:
            self.requests.labeled(
                annotator=label.annotator, request_id=label.request_id, event_id=label.event_id
            )

    # -- HTTP -------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        """Answer one HTTP request; ``headers`` names are matched case-insensitively."""
        headers = {k.lower(): v for k, v in headers.items()}
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if method == "GET":
                return self._get(url.path, query, headers)
            if method == "POST":
                self._check_origin(headers)
                if url.path == "/api/labels":
                    return self._post_api(headers, body)
                if url.path == "/labels":
                    return self._post_form(headers, body)
            if url.path in {"/", "/api/requests", "/api/labels", "/labels", "/healthz"}:
                return _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here")
            return _error(HTTPStatus.NOT_FOUND, "no such page")
        except _BadInput as error:
            return _error(error.status, str(error))

    def _get(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Response:
        if path == "/":
            annotator = query.get("annotator") or _cookie(headers, COOKIE)
            with self._lock:
                now = self._clock_ms()
                shown = self.requests.open(now, annotator or None, self.page_limit)
                total = len(self.requests.open(now, annotator or None))
            page = render_page(shown, annotator[:MAX_ANNOTATOR_CHARS], now, total, query.get("flash", ""))
            return Response(HTTPStatus.OK, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        if path == "/api/requests":
            try:
                limit = int(query["limit"]) if "limit" in query else None
            except ValueError:
                raise _BadInput(HTTPStatus.BAD_REQUEST, "limit must be an integer") from None
            with self._lock:
                open_requests = self.requests.open(self._clock_ms(), query.get("annotator") or None)
            payload = [r.model_dump(mode="json") for r in open_requests[:limit]]
            return _json(HTTPStatus.OK, {"requests": payload, "total": len(open_requests)})
        if path == "/static/app.js":
            return Response(
                HTTPStatus.OK, APP_JS.encode(), {"Content-Type": "text/javascript; charset=utf-8"}
            )
        if path == "/static/style.css":
            return Response(HTTPStatus.OK, STYLE_CSS.encode(), {"Content-Type": "text/css; charset=utf-8"})
        if path == "/healthz":
            return _json(HTTPStatus.OK, {"status": "ok"})
        if path in {"/api/labels", "/labels"}:
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, "GET is not allowed here")
        return _error(HTTPStatus.NOT_FOUND, "no such page")

    def _post_api(self, headers: dict[str, str], body: bytes) -> Response:
        if not headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
            raise _BadInput(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the label as application/json")
        self._check_size(body)
        try:
            payload = json.loads(body)
        except ValueError:
            raise _BadInput(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(payload, dict):
            raise _BadInput(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        label = self._submit(payload)
        return _json(HTTPStatus.CREATED, label.model_dump(mode="json"))

    def _post_form(self, headers: dict[str, str], body: bytes) -> Response:
        self._check_size(body)
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        payload: dict[str, Any] = {
            "request_id": form.get("request_id"),
            "event_id": form.get("event_id"),
            "annotator": form.get("annotator") or _cookie(headers, COOKIE),
        }
        if "label_json" in form:
            try:
                payload["label"] = json.loads(form["label_json"])
            except ValueError:
                raise _BadInput(HTTPStatus.BAD_REQUEST, "label_json is not JSON") from None
        else:
            payload["label_text"] = form.get("label_text", "")
        try:
            self._submit(payload)
            flash = ""
        except _BadInput as error:
            flash = str(error)
        location = "/" + (f"?flash={_quote(flash)}" if flash else "")
        return Response(HTTPStatus.SEE_OTHER, b"", {"Location": location})

    def _submit(self, payload: dict[str, Any]) -> Label:
        annotator = payload.get("annotator")
        if not isinstance(annotator, str) or not annotator.strip():
            raise _BadInput(HTTPStatus.BAD_REQUEST, "an annotator name is required")
        if len(annotator) > MAX_ANNOTATOR_CHARS:
            raise _BadInput(
                HTTPStatus.BAD_REQUEST, f"the annotator name is over {MAX_ANNOTATOR_CHARS} characters"
            )
        request_id, event_id = payload.get("request_id"), payload.get("event_id")
        if not isinstance(request_id, str | None) or not isinstance(event_id, str | None):
            raise _BadInput(HTTPStatus.BAD_REQUEST, "request_id and event_id must be strings")
        with self._lock:
            request = self.requests.get(request_id=request_id, event_id=event_id)
        if request is None:
            raise _BadInput(HTTPStatus.NOT_FOUND, "no such open request (answered, expired or never asked)")
        if "label" in payload:
            value = payload["label"]
        else:
            text = payload.get("label_text")
            if not isinstance(text, str):
                raise _BadInput(HTTPStatus.BAD_REQUEST, "give a label or a label_text")
            try:
                value = parse_label_text(text, request.predicted_label)
            except ValueError as error:
                raise _BadInput(HTTPStatus.BAD_REQUEST, str(error)) from None
        try:
            label = Label.model_validate(
                {
                    "request_id": request.request_id,
                    "event_id": request.event_id,
                    "label": value,
                    "annotator": annotator.strip(),
                    "labeled_at": datetime.fromtimestamp(self._clock_ms() / 1000, tz=UTC),
                }
            )
        except ValidationError:
            raise _BadInput(HTTPStatus.BAD_REQUEST, "a label is a JSON string, integer or boolean") from None
        try:
            self._post(label)
        except TransportError as error:
            log.warning("label not delivered", extra={"error": str(error)})
            raise _BadInput(
                HTTPStatus.SERVICE_UNAVAILABLE, "the label could not be delivered; try again"
            ) from None
        self.record_label(label)
        return label

    @staticmethod
    def _check_size(body: bytes) -> None:
        if len(body) > MAX_BODY_BYTES:
            raise _BadInput(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {MAX_BODY_BYTES} bytes")

    @staticmethod
    def _check_origin(headers: dict[str, str]) -> None:
        origin = headers.get("origin")
        if origin is None:
            return
        host = headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise _BadInput(HTTPStatus.FORBIDDEN, "cross-origin label posts are refused")


def _cookie(headers: Mapping[str, str], name: str) -> str:
    raw = headers.get("cookie")
    if not raw:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is no reason to fail the page
        return ""
    morsel = jar.get(name)
    if morsel is None:
        return ""
    return unquote(morsel.value)


def _quote(text: str) -> str:
    return quote(text, safe="")


class _Handler(BaseHTTPRequestHandler):
    app: LabelingApp  # set on the subclass made by LabelingServer
    server_version = "activestream-label-ui"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            response = _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {MAX_BODY_BYTES} bytes")
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            response = self.app.handle(method, self.path, dict(self.headers.items()), body)
        self.send_response(response.status)
        headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Content-Length": str(len(response.body)),
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class LabelingServer:
    """Serves a ``LabelingApp`` on ``host:port`` (port 0: any free port) from a background thread."""

    def __init__(self, app: LabelingApp, host: str = "127.0.0.1", port: int = 8080) -> None:
        handler = type("Handler", (_Handler,), {"app": app})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LabelingServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="label-ui-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)


class RequestFeed:
    """Keeps a ``LabelingApp`` fed: label requests and labels from Kafka, on a thread of its own.

    The consumer never commits: every start reads the topics from the beginning (``auto_offset_reset``
    earliest), so the page shows every request that is still open, whatever happened before.
    """

    def __init__(
        self,
        app: LabelingApp,
        consumer: Consumer,
        requests_topic: str,
        labels_topic: str,
        poll_timeout_s: float = 0.5,
    ) -> None:
        self.app = app
        self.consumer = consumer
        self.requests_topic, self.labels_topic = requests_topic, labels_topic
        self.poll_timeout_s = poll_timeout_s
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        messages = self.consumer.poll(self.poll_timeout_s, 500)
        if not self.ready.is_set() and self.consumer.assignment():
            self.ready.set()
        for message in messages:
            if message.topic == self.requests_topic:
                try:
                    self.app.add_request(LabelRequest.model_validate_json(message.value or b""))
                except ValidationError:
                    log.debug(
                        "skipped a record that is not a label request", extra={"offset": message.offset}
                    )
            elif message.topic == self.labels_topic:
                label = parse_label(message.value)
                if isinstance(label, Label):
                    self.app.record_label(label)
        return len(messages)

    def start(self) -> RequestFeed:
        self.consumer.subscribe([self.requests_topic, self.labels_topic])
        self._thread = threading.Thread(target=self._run, name="label-ui-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except TransportError as error:
                log.warning("label-ui feed: poll failed", extra={"error": str(error)})
                self._stop.wait(self.poll_timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.consumer.close()


def run_label_ui(
    settings: Any,
    host: str = "127.0.0.1",
    port: int = 8080,
    group_id: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """``activestream label-ui``: serve the page until ``stop`` is set (or SIGINT/SIGTERM from the CLI)."""
    from activestream.transport.factory import consumer_from_settings, producer_from_settings

    consumer = consumer_from_settings(settings, group_id=group_id or f"{settings.group_id}-label-ui")
    producer = producer_from_settings(settings)
    producer_lock = threading.Lock()

    def post(label: Label) -> None:
        with producer_lock:
            producer.produce(settings.labels_topic, to_json(label), key=(label.event_id or "").encode())
            producer.flush(settings.flush_timeout_seconds)

    needed = getattr(settings, "annotators_per_request", 1)
    app = LabelingApp(OpenRequests(needed=needed), post)
    feed = RequestFeed(app, consumer, settings.requests_topic, settings.labels_topic).start()
    server = LabelingServer(app, host, port).start()
    log.info("label-ui serving", extra={"url": server.url})
    print(f"activestream label-ui: {server.url}", flush=True)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        feed.stop()
        producer.close()
