"""A small TCP proxy for fault injection: put it between clients and a broker, then cut the wire.

``TcpProxy`` listens on a loopback port and forwards every connection to a target address, on one
selector thread. ``drop_all()`` closes every open connection at once (with a TCP reset) and, until
``restore()`` or for ``duration_s``, refuses new ones the same way; clients see the broker vanish
exactly as in a network outage, then come back. With ``mode="blackhole"`` connections made during the
outage are accepted but nothing is forwarded nor answered (a partition: clients wait for their
request timeouts instead of seeing resets).

Bounded: at most ``max_connections`` connections at once (more are reset), and at most
``buffer_bytes`` buffered per direction of a connection (reading stops until the other side drains).
Loopback only: the proxy refuses to listen on, or forward to, any other address.

>>> import socket
>>> echo = socket.create_server(("127.0.0.1", 0))
>>> with TcpProxy("127.0.0.1", echo.getsockname()[1]) as proxy:
...     client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
...     server, _ = echo.accept()
...     client.sendall(b"ping")
...     server.recv(4)
...     proxy.drop_all()
...     try:
...         client.recv(4)  # the proxy reset the connection
...     except ConnectionResetError:
...         print("reset")
...     proxy.dropped, proxy.restore(), proxy.dropped
b'ping'
reset
(True, None, False)
>>> client.close(); server.close(); echo.close()
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

__all__ = ["TcpProxy"]

log = logging.getLogger(__name__)

_CHUNK = 65_536
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on with a 0 s timeout: close() sends a RST


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass(eq=False)
class _Side:
    sock: socket.socket
    out: bytearray = field(default_factory=bytearray)  # bytes waiting to be written to this side
    eof: bool = False  # this side closed its sending half


@dataclass(eq=False)
class _Pair:
    client: _Side
    upstream: _Side
    connected: bool = False  # the upstream connect() completed


class TcpProxy:
    """Forwards ``listen_host:port`` to ``target_host:target_port``; a context manager.

    Parameters
    ----------
    target_host, target_port
        Where connections go (a loopback address).
    listen_host, listen_port
        Where the proxy listens (a loopback address; port 0: a free port, see ``port``).
    max_connections
        Connections open at once; more are reset.
    buffer_bytes
        Most bytes buffered per direction of one connection.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        max_connections: int = 256,
        buffer_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        for host in (target_host, listen_host):
            if not _is_loopback(host):
                raise ValueError(f"the proxy is for loopback addresses only, not {host!r}")
        if max_connections < 1 or buffer_bytes < _CHUNK:
            raise ValueError("max_connections must be >= 1 and buffer_bytes >= 65536")
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self.buffer_bytes = buffer_bytes
        self._listener = socket.create_server((listen_host, listen_port), reuse_port=False)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._pairs: set[_Pair] = set()
        self._held: list[socket.socket] = []  # blackholed connections
        self._lock = threading.Lock()
        self._commands: list[tuple[str, float | None, str, threading.Event]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._dropped_until: float | None = None  # monotonic end of the outage; inf: until restore()
        self._mode: Literal["reset", "blackhole"] = "reset"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="activestream-proxy", daemon=True)
        #: Connections accepted and forwarded, and connections refused (reset or held) during outages.
        self.accepted = 0
        self.refused = 0
        self.drops = 0

    # -- control (any thread) --------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``host:port`` to give clients."""
        return f"{self.host}:{self.port}"

    @property
    def dropped(self) -> bool:
        """Whether an outage is in progress."""
        with self._lock:
            until = self._dropped_until
        return until is not None and time.monotonic() < until

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def start(self) -> TcpProxy:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def drop_all(
        self, duration_s: float | None = None, mode: Literal["reset", "blackhole"] = "reset"
    ) -> None:
        """Close every connection now and refuse new ones for ``duration_s`` (``None``: until ``restore``).

        Returns once the open connections are closed.
        """
        if mode not in ("reset", "blackhole"):
            raise ValueError(f"unknown mode {mode!r}")
        self._command("drop", duration_s, mode)

    def restore(self) -> None:
        """End the outage: new connections are forwarded again (blackholed ones are reset)."""
        self._command("restore", None, "reset")

    def stop(self) -> None:
        """Close everything and stop the thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(5)
        else:
            self._close_all()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self, name: str, duration_s: float | None, mode: str) -> None:
        done = threading.Event()
        with self._lock:
            self._commands.append((name, duration_s, mode, done))
        if not self._thread.is_alive():
            self._run_commands()
            return
        self._wake()
        if not done.wait(5):
            raise RuntimeError("the proxy thread did not answer")

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the selector thread ---------------------------------------------------------------------------
    def _run_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for name, duration_s, mode, done in commands:
            if name == "drop":
                self.drops += 1
                until = float("inf") if duration_s is None else time.monotonic() + duration_s
                with self._lock:
                    self._dropped_until, self._mode = until, mode  # type: ignore[assignment]
                self._close_all()
                log.info("proxy: dropped every connection", extra={"duration_s": duration_s, "mode": mode})
            else:
                with self._lock:
                    self._dropped_until = None
                self._release_held()
                log.info("proxy: restored")
            done.set()

    def _loop(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                for key, events in self._selector.select(timeout=0.1):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        self._run_commands()
                    else:
                        pair, side = key.data
                        if pair in self._pairs:
                            self._service(pair, side, events)
                with self._lock:
                    until = self._dropped_until
                if until is not None and time.monotonic() >= until:
                    with self._lock:
                        self._dropped_until = None
                    self._release_held()
                    log.info("proxy: outage over")
        except Exception:  # pragma: no cover - a bug here must not pass silently
            log.exception("proxy thread failed")
        finally:
            self._close_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            with self._lock:
                dropped = self._dropped_until is not None and time.monotonic() < self._dropped_until
                mode = self._mode
            if dropped:
                self.refused += 1
                if mode == "blackhole" and len(self._held) < self.max_connections:
                    self._held.append(client)
                else:
                    _reset(client)
                continue
            if len(self._pairs) >= self.max_connections:
                self.refused += 1
                _reset(client)
                continue
            client.setblocking(False)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                upstream.connect_ex(self.target)
            except OSError:
                _reset(client)
                _reset(upstream)
                continue
            pair = _Pair(_Side(client), _Side(upstream))
            with self._lock:
                self._pairs.add(pair)
            self.accepted += 1
            # The client is read once the upstream connection is up (see ``_update``).
            self._selector.register(upstream, selectors.EVENT_WRITE, (pair, "upstream"))

    def _service(self, pair: _Pair, name: str, events: int) -> None:
        side, other = (pair.client, pair.upstream) if name == "client" else (pair.upstream, pair.client)
        if name == "upstream" and not pair.connected:
            if side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._close(pair)  # the target refused: so does the proxy
                return
            pair.connected = True
        try:
            if events & selectors.EVENT_READ:
                data = side.sock.recv(_CHUNK)
                if data:
                    other.out += data
                else:
                    side.eof = True
            if events & selectors.EVENT_WRITE and side.out:
                del side.out[: side.sock.send(side.out)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(pair)
            return
        # Kafka never half-closes: once a side is done and its last bytes are delivered, so is the pair.
        if (pair.client.eof and not pair.upstream.out) or (pair.upstream.eof and not pair.client.out):
            self._close(pair)
            return
        self._update(pair)

    def _update(self, pair: _Pair) -> None:
        for name, side, other in (
            ("client", pair.client, pair.upstream),
            ("upstream", pair.upstream, pair.client),
        ):
            if name == "upstream" and not pair.connected:
                continue  # still waiting for the connect (registered for writing)
            mask = 0
            if not side.eof and len(other.out) < self.buffer_bytes and (name == "upstream" or pair.connected):
                mask |= selectors.EVENT_READ
            if side.out:
                mask |= selectors.EVENT_WRITE
            self._watch(side.sock, mask, (pair, name))

    def _watch(self, sock: socket.socket, mask: int, data: object) -> None:
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            key = None
        if not mask:
            if key is not None:
                self._selector.unregister(sock)
        elif key is None:
            self._selector.register(sock, mask, data)
        elif key.events != mask:
            self._selector.modify(sock, mask, data)

    def _close(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for side in (pair.client, pair.upstream):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(side.sock)
            _reset(side.sock)

    def _close_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._close(pair)

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for sock in held:
            _reset(sock)
