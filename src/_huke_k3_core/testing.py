"""Machinery both simulators share: scheduled fault injection, a capacity model and a loopback
HTTP server.

A simulator is a plain handler ``(httpx.Request) -> httpx.Response``. It runs in-process behind
``httpx.MockTransport`` or, through ``serve``, behind a real socket on 127.0.0.1. Faults are raised
as the httpx exceptions a real network produces; the loopback server turns them back into
socket-level behaviour (a reset, a silent hang). ``limit_capacity`` makes a simulator work on a
bounded number of requests at a time and turn the others away with its rate-limit reply, as a
loaded server does (meaningful behind ``serve``, whose threads answer requests side by side).

Every reply a ``FaultInjectingSimulator`` makes (fault replies included) carries an RFC 7231
``Date`` header read from the simulator's own ``clock`` (``time.time`` unless it was given one),
unless the reply already has one: a client can measure its clock's skew against a simulated
server as against a real one. ``LoopbackServer`` sends the handler's ``Date`` as given (exactly
one on the wire for a simulator's reply), and one of its own only when the handler gave none.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx

Handler = Callable[[httpx.Request], httpx.Response]


@attrs.frozen
class Fault:
    """One misbehaviour of the server or the network, applied to one request.

    ``commit`` says whether the simulator processes the request before the fault strikes: a reply
    lost after the server did the work is the case that makes writes dangerous to retry.
    """

    kind: str
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    commit: bool = False

    @classmethod
    def http_status(
        cls, status: int, *, retry_after: str | float | None = None, body: bytes = b""
    ) -> Fault:
        """An HTTP error status (500, 502, 503, 429 ...), optionally with ``Retry-After``."""
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls(
            "status",
            status=status,
            body=body or f"simulated HTTP {status}".encode(),
            headers=headers,
        )

    @classmethod
    def reset(cls) -> Fault:
        """The connection is reset before the server reads the request."""
        return cls("reset")

    @classmethod
    def connect_error(cls) -> Fault:
        """The connection cannot be opened: the request surely never reached the server."""
        return cls("connect_error")

    @classmethod
    def timeout(cls) -> Fault:
        """The server never answers (and does not process the request)."""
        return cls("timeout")

    @classmethod
    def reply_lost(cls) -> Fault:
        """The server processes the request, then the connection drops before the reply arrives."""
        return cls("reset", commit=True)

    @classmethod
    def reply_timeout(cls) -> Fault:
        """The server processes the request, then the reply never arrives (a timeout after commit)."""
        return cls("timeout", commit=True)

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200 with a body cut in the middle of its JSON."""
        return cls("body", body=b'{"code": 200, "data": [{"trunc')

    @classmethod
    def reply(
        cls, body: bytes, *, status: int = 200, content_type: str = "application/json"
    ) -> Fault:
        """A reply of the caller's making (an error envelope, a rate-limit answer ...)."""
        return cls("body", status=status, body=body, headers=(("Content-Type", content_type),))

    def strike(self, request: httpx.Request, process: Handler) -> httpx.Response:
        if self.commit:
            process(request)
        if self.kind == "status" or self.kind == "body":
            return httpx.Response(
                self.status, content=self.body, headers=list(self.headers), request=request
            )
        if self.kind == "reset":
            raise httpx.ReadError(
                "[Errno 104] Connection reset by peer (simulated)", request=request
            )
        if self.kind == "connect_error":
            raise httpx.ConnectError("[Errno 111] Connection refused (simulated)", request=request)
        if self.kind == "timeout":
            raise httpx.ReadTimeout("timed out (simulated)", request=request)
        raise ValueError(f"unknown fault kind {self.kind!r}")


@attrs.define
class _Scheduled:
    fault: Fault
    times: int
    skip: int
    path: str | None


class FaultPlan:
    """Faults waiting to strike, in the order they were injected. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Scheduled] = []
        self.struck: list[tuple[str, str]] = []

    def inject(
        self, fault: Fault, *, times: int = 1, after: int = 0, path: str | None = None
    ) -> None:
        """Strike ``times`` times, after letting ``after`` matching requests through; ``path``, if
        given, restricts the fault to requests whose URL path contains it."""
        if times < 1 or after < 0:
            raise ValueError("times must be >= 1 and after >= 0")
        with self._lock:
            self._queue.append(_Scheduled(fault, times, after, path))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(s.times for s in self._queue)

    def take(self, request: httpx.Request) -> Fault | None:
        if not self._queue:  # the usual case; a fault injected meanwhile races either way
            return None
        path = request.url.path
        with self._lock:
            for scheduled in self._queue:
                if scheduled.path is not None and scheduled.path not in path:
                    continue
                if scheduled.skip:
                    scheduled.skip -= 1
                    return None
                scheduled.times -= 1
                if not scheduled.times:
                    self._queue.remove(scheduled)
                self.struck.append((scheduled.fault.kind, path))
                return scheduled.fault
        return None


@attrs.frozen
class Capacity:
    """A server that works on at most ``limit`` requests at a time, each for ``service_time``
    seconds; a request beyond that is turned away at once with the simulator's rate-limit reply.
    ``path``, if given, restricts the limit to requests whose URL path contains it."""

    limit: int = attrs.field(validator=attrs.validators.ge(1))
    service_time: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    path: str | None = None

    def applies_to(self, request: httpx.Request) -> bool:
        return self.path is None or self.path in request.url.path


class FaultInjectingSimulator:
    """Base of the simulators: fault injection, a capacity model, a bounded log of the requests
    received, and the ``Date`` header of every reply, read from ``clock`` (Unix seconds): the
    server's own clock, which may differ from the caller's."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        #: The server's clock (Unix seconds): what its replies' ``Date`` headers say.
        self.clock = clock
        self.faults = FaultPlan()
        self.received: collections.deque[httpx.Request] = collections.deque(maxlen=10_000)
        self._requests_seen = 0
        self._count_lock = threading.Lock()
        self.capacity: Capacity | None = None
        self._in_flight = 0
        #: Most requests worked on at once, and requests turned away for want of capacity.
        self.peak_in_flight = 0
        self.turned_away = 0

    @property
    def request_count(self) -> int:
        """Requests received, including those a fault struck."""
        return self._requests_seen

    def inject(
        self, fault: Fault, *, times: int = 1, after: int = 0, path: str | None = None
    ) -> None:
        self.faults.inject(fault, times=times, after=after, path=path)

    def limit_capacity(
        self, limit: int | None, *, service_time: float = 0.0, path: str | None = None
    ) -> None:
        """Work on at most ``limit`` requests at a time, each taking ``service_time`` seconds
        (on top of the server's ``latency``), and answer any request beyond that at once with
        ``rate_limit_fault()``: a server that turns callers away rather than queue them. ``None``
        lifts the limit. ``path`` restricts it to requests whose URL path contains it."""
        self.capacity = (
            None if limit is None else Capacity(limit, service_time=service_time, path=path)
        )

    def rate_limit_fault(self) -> Fault:
        """The reply to a request beyond the capacity: HTTP 429 here; a simulator whose service
        answers a rate limit otherwise (K/3 Cloud's MsgCode 14) overrides it."""
        return Fault.http_status(429)

    @property
    def in_flight(self) -> int:
        """Requests being worked on now (counted only while a capacity is set)."""
        return self._in_flight

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self._admit(request)
        # Stamped here, the one place every reply passes (fault replies and the capacity's
        # refusals too), so that no route of either simulator can forget it.
        if "Date" not in response.headers:
            response.headers["Date"] = formatdate(self.clock(), usegmt=True)
        return response

    def _admit(self, request: httpx.Request) -> httpx.Response:
        with self._count_lock:
            self._requests_seen += 1
        self.received.append(request)
        capacity = self.capacity
        if capacity is None or not capacity.applies_to(request):
            return self._process(request)
        with self._count_lock:
            admitted = self._in_flight < capacity.limit
            if admitted:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            else:
                self.turned_away += 1
        if not admitted:
            return self.rate_limit_fault().strike(request, self.handle)
        try:
            if capacity.service_time:
                time.sleep(capacity.service_time)
            return self._process(request)
        finally:
            with self._count_lock:
                self._in_flight -= 1

    def _process(self, request: httpx.Request) -> httpx.Response:
        fault = self.faults.take(request)
        if fault is not None:
            return fault.strike(request, self.handle)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def transport(self) -> httpx.MockTransport:
        """An in-process transport: ``httpx.Client(transport=fake.transport())``."""
        return httpx.MockTransport(self)

    def serve(
        self, *, latency: float = 0.0, connect_latency: float = 0.0, hang: float = 5.0
    ) -> LoopbackServer:
        """Serve on 127.0.0.1 (a free port) until the returned server is closed."""
        return LoopbackServer(self, latency=latency, connect_latency=connect_latency, hang=hang)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection does not pin a thread forever

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm holds the
        # body back until the client's delayed ACK (~40 ms per request on Linux loopback).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._fresh_connection = True
        self.server.track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, opened=False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read results, not logs
        return

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        if self._fresh_connection:
            self._fresh_connection = False
            if owner.connect_latency:
                time.sleep(owner.connect_latency)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host, port = self.server.server_address[:2]
        request = httpx.Request(
            self.command,
            f"http://{host!s}:{port}{self.path}",
            headers=[(k, v) for k, v in self.headers.items()],
            content=body,
        )
        if owner.latency:
            time.sleep(owner.latency)
        try:
            response = owner.handler(request)
        except httpx.TimeoutException:
            time.sleep(owner.hang)
            self._abort()
            return
        except httpx.TransportError:
            self._abort()
            return
        content = response.read()
        # ``send_response`` would add a ``Date`` of its own, from this machine's clock: a second
        # one beside the simulator's, and a skew check against it would measure nothing.
        self.log_request(response.status_code)
        self.send_response_only(response.status_code)
        self.send_header("Server", self.version_string())
        for value in response.headers.get_list("Date") or [self.date_time_string()]:
            self.send_header("Date", value)
        for name, value in response.headers.multi_items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _abort(self) -> None:
        """Close with a TCP reset, as a crashed peer or a middlebox would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.connections_opened = 0
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-exchange (killed, timed out, reset) is an expected event in
        # fault tests, not a server bug worth a traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._open_lock:
            if opened:
                self._open.add(conn)
                self.connections_opened += 1
            else:
                self._open.discard(conn)

    def close_all(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class LoopbackServer:
    """A simulator behind a real socket on 127.0.0.1. Use as a context manager.

    ``latency`` is added to every request; ``connect_latency`` once per new connection (what a TCP
    and TLS handshake costs on a real network, and what connection reuse saves).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        latency: float = 0.0,
        connect_latency: float = 0.0,
        hang: float = 5.0,
    ) -> None:
        self.handler = handler
        self.latency = latency
        self.connect_latency = connect_latency
        self.hang = hang
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how quickly close() is noticed
            name="loopback-simulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def connections_opened(self) -> int:
        return self._server.connections_opened

    def close(self) -> None:
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def serve(handler: Handler, **options: float) -> Iterator[LoopbackServer]:
    server = LoopbackServer(handler, **options)
    try:
        yield server
    finally:
        server.close()


#: How deep a request body may nest objects and arrays before a simulator refuses it (real JSON
#: readers stop somewhere too; Python's recursion would otherwise end the handler instead).
MAX_JSON_DEPTH = 64


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iteratively: no recursion to
    exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if type(item) is dict else item
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False
