"""A real HTTP server on loopback for a fake vendor, with fault injection and request recording.

Connector tests talk to the fake over real sockets, so client timeouts, connection errors, retries and
idempotency keys behave as they will against the vendor. Subclass ``FakeServer`` and build the fake's
FastAPI app in ``build_app`` (or pass any ASGI app), then::

    with MyFake() as fake:
        client = MyClient(fake.base_url, timeout=0.5)
        fake.fail_next(2, status=503)           # the next two requests answer 503
        fake.rate_limit_next(1, retry_after=7)  # then one 429 with Retry-After: 7
        fake.hang_next(1)                       # then one request gets no answer before the client gives up
        ...
        assert fake.requests[-1].headers["idempotency-key"] == "..."
        assert len(fake.effects) == 1           # what the fake vendor actually did

Faults are consumed in the order they were added, one per matching request. A fault stops the request
before it reaches the app (the vendor does nothing) unless it is added with ``after=True``: then the app
handles the request (the vendor acts) and the answer is lost, which is how "did it send or not?" happens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, as it arrived (before any fault was applied)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: datetime
    fault: str | None = None  # the fault applied to it, e.g. "status:503" or "hang"

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Fault:
    kind: str  # "status" or "hang"
    status: int = 503
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    seconds: float | None = None
    after: bool = False
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or path.startswith(self.path)) and (
            self.method is None or self.method.upper() == method.upper()
        )

    @property
    def label(self) -> str:
        return f"status:{self.status}" if self.kind == "status" else ("hang-after" if self.after else "hang")


class FakeServer:
    """Runs an ASGI app (usually FastAPI) with uvicorn in a thread on ``127.0.0.1:<free port>``."""

    #: How long ``start`` waits for uvicorn to accept connections.
    start_timeout: float = 10.0

    def __init__(self, app: ASGIApp | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        #: What the fake vendor actually did (messages accepted, orders stored, ...): fakes append here
        #: through ``record_effect`` so tests can count side effects rather than requests.
        self.effects: list[Any] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._release_generation = 0  # bumped by release() and stop(): wakes every hanging request
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._socket: socket.socket | None = None
        self._app = app if app is not None else self.build_app()

    # --- for subclasses ----------------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        """Return the fake vendor's ASGI app. Override this, or pass ``app`` to the constructor."""
        raise TypeError(f"{type(self).__name__}: pass an app to FakeServer() or override build_app()")

    def record_effect(self, effect: Any) -> None:
        """Call from the fake's handlers when the vendor acts (thread-safe)."""
        with self._lock:
            self.effects.append(effect)

    # --- running -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use it as a context manager or call start()")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeServer:
        if self.running:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it Nagle's algorithm holds the response body until the
        # client's delayed ACK, adding ~40 ms to every request on a kept-alive connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self._port or 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            _FaultInjector(self._app, self), log_level="warning", access_log=False, lifespan="auto",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-{type(self).__name__}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError(f"{type(self).__name__} failed to start (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{type(self).__name__} did not start within {self.start_timeout:g} s")
            time.sleep(0.01)
        self._socket = sock
        return self

    def stop(self) -> None:
        """Stop serving; later requests get "connection refused" (the vendor is down). ``start`` resumes on
        the same port."""
        self.release()  # let hanging requests finish so shutdown is quick
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ------------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        after: bool = False,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """The next ``count`` matching requests answer ``status`` with a JSON ``body``."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail_next() needs an error status (400-599), got {status}")
        payload = json.dumps(body if body is not None else {"error": {"code": f"http_{status}",
                                                                       "message": "injected fault"}}).encode()
        raw_headers = [(b"content-type", b"application/json")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self._add(count, _Fault("status", status, raw_headers, payload, after=after, path=path, method=method))

    def rate_limit_next(self, count: int = 1, *, retry_after: int = 1, path: str | None = None) -> None:
        """The next ``count`` matching requests answer 429 with ``Retry-After: <retry_after>`` (seconds)."""
        self.fail_next(count, status=429, headers={"Retry-After": str(retry_after)}, path=path,
                       body={"error": {"code": "rate_limited", "message": f"retry after {retry_after} s"}})

    def hang_next(
        self, count: int = 1, *, seconds: float | None = None, after: bool = False, path: str | None = None,
        method: str | None = None,
    ) -> None:
        """The next ``count`` matching requests get no answer for ``seconds`` (default: until the server
        stops or ``release()``), i.e. longer than any sane client timeout. Then they answer 504.
        With ``after=True`` the app handles the request first and only the answer is held back."""
        self._add(count, _Fault("hang", seconds=seconds, after=after, path=path, method=method))

    def release(self) -> None:
        """Let every request hanging now finish (faults added later hang again)."""
        with self._lock:
            self._release_generation += 1

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget faults, recorded requests and effects."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.effects.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _add(self, count: int, fault: _Fault) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(**fault.__dict__))

    def _take(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    async def _wait(self, seconds: float | None) -> None:
        generation = self._release_generation
        deadline = None if seconds is None else time.monotonic() + seconds
        # Polls a counter other threads bump; an asyncio.Event could not be set safely from those threads.
        while self._release_generation == generation and (deadline is None or time.monotonic() < deadline):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class _FaultInjector:
    """ASGI middleware: records each request, then applies the next matching fault, if any."""

    def __init__(self, app: ASGIApp, server: FakeServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        fault = self.server._take(method, path)
        self.server._record(RecordedRequest(
            method=method,
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            body=body,
            at=datetime.now(UTC),
            fault=fault.label if fault else None,
        ))

        sent_body = False

        async def replay() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if fault is None:
            await self.app(scope, replay, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        if fault.after:
            await self.app(scope, replay, hold)
        if fault.kind == "hang":
            await self.server._wait(fault.seconds)
            if fault.after:
                await _send_all(send, held)
            else:
                await _send_json(send, 504, [], json.dumps({"error": {"code": "gateway_timeout",
                                                                      "message": "injected hang"}}).encode())
            return
        await _send_json(send, fault.status, fault.headers, fault.body)


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        try:
            await send(message)
        except Exception:  # the client gave up long ago; nothing to answer
            return


async def _send_json(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    all_headers = [(b"content-type", b"application/json"), *[h for h in headers if h[0] != b"content-type"],
                   (b"content-length", str(len(body)).encode())]
    await _send_all(send, [
        {"type": "http.response.start", "status": status, "headers": all_headers},
        {"type": "http.response.body", "body": body},
    ])
