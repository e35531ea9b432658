"""The HTTP side: ``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (readiness), on their own thread;
GET or HEAD.

The HTTP thread never touches the consumer (it is not thread-safe) nor the broker: the loop and the
broker watch record what they observed in a thread-safe :class:`~activestream.health.Health`, and the
endpoints only read it (``/healthz``: the loop is alive; ``/readyz``: partitions assigned and the broker
reachable).
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from activestream.health import Health
from activestream.metrics import Metrics

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


def _handler(metrics: Metrics, health: Health, liveness_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "activestream"

        #: HEAD answers as GET would, without the body (uptime checkers and load balancers send it).
        head_only = False

        def do_HEAD(self) -> None:
            self.head_only = True
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(HTTPStatus.OK, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send_status(health.alive(liveness_timeout_s))
            elif path == "/readyz":
                self._send_status(health.ready())
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        def _send_status(self, ok: bool) -> None:
            body = json.dumps({"ok": ok, **health.snapshot()}).encode() + b"\n"
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, body, "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not self.head_only:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes hit these endpoints every few seconds: keep them out of the INFO logs.
            log.debug("http %s", format % args)

    return Handler


class HttpServer:
    """Serves the endpoints on a daemon thread; binds at construction, so ``port`` is known at once.

    ``port=0`` binds an ephemeral port (tests).
    """

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        host: str = "0.0.0.0",
        port: int = 8000,
        liveness_timeout_s: float = 60.0,
    ):
        self._server = ThreadingHTTPServer((host, port), _handler(metrics, health, liveness_timeout_s))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="activestream-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    def start(self) -> HttpServer:
        self._thread.start()
        log.info("http server started", extra={"port": self.port})
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
