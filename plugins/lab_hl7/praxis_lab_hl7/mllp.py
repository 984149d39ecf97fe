"""MLLP (HL7 v2.5.1 Appendix C): ``0x0B`` + message + ``0x1C 0x0D`` over TCP, no length prefix.

A small synchronous implementation: the connector sends one message and waits for one answer with a deadline,
and the listener answers each frame on the connection it came on. ``FrameReader`` copes with frames split across
reads and several frames in one read.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable

START, END = b"\x0b", b"\x1c\x0d"
MAX_FRAME = 10 * 1024 * 1024


class MllpError(Exception):
    """The peer could not be reached, did not answer in time, or broke the framing."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


class FrameReader:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frames' contents (bytes outside a frame are dropped)."""
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(START)
            if start < 0:
                self._buffer = b""
                return frames
            end = self._buffer.find(END, start + 1)
            if end < 0:
                self._buffer = self._buffer[start:]
                if len(self._buffer) > MAX_FRAME:
                    raise MllpError(f"frame larger than {MAX_FRAME} bytes", "frame_too_large")
                return frames
            frames.append(self._buffer[start + 1:end])
            self._buffer = self._buffer[end + len(END):]


def exchange(host: str, port: int, message: str, timeout: float) -> str:
    """Send one message and return the first framed answer. The whole exchange is bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise MllpError(f"no connection to {host}:{port} within {timeout:g} s", "connect_timeout") from exc
    except OSError as exc:
        raise MllpError(f"cannot reach {host}:{port}: {exc}", "unreachable") from exc
    with conn:
        try:
            conn.sendall(frame(message))
        except OSError as exc:
            raise MllpError(f"the connection to {host}:{port} broke while sending: {exc}", "send_failed") from exc
        reader = FrameReader()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MllpError(f"no answer from {host}:{port} within {timeout:g} s", "no_answer")
            conn.settimeout(left)
            try:
                data = conn.recv(65536)
            except TimeoutError as exc:
                raise MllpError(f"no answer from {host}:{port} within {timeout:g} s", "no_answer") from exc
            except OSError as exc:
                raise MllpError(f"the connection to {host}:{port} broke: {exc}", "connection_lost") from exc
            if not data:
                raise MllpError(f"{host}:{port} closed the connection without answering", "no_answer")
            frames = reader.feed(data)
            if frames:
                return frames[0].decode("utf-8", errors="replace")


Handler = Callable[[str], str | None]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    handle_message: Handler


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        reader = FrameReader()
        self.request.settimeout(300)
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                frames = reader.feed(data)
            except MllpError:
                return
            for raw in frames:
                answer = self.server.handle_message(raw.decode("utf-8", errors="replace"))
                if answer is None:  # the handler chose not to answer (a fake lab's injected fault)
                    return
                try:
                    self.request.sendall(frame(answer))
                except OSError:
                    return


class MllpServer:
    """A threaded MLLP server: ``handler(message) -> answer`` runs once per received frame."""

    def __init__(self, host: str, port: int, handler: Handler) -> None:
        self._server = _Server((host, port), _Connection, bind_and_activate=True)
        self._server.handle_message = handler
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mllp-{host}:{port}", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MllpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
