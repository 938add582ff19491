"""A raw-socket HTTP/1.1 client for what ordinary clients will not do: lie about lengths, trickle, stall.

It sends the request head, then body bytes under the test's control, and
reads the response whenever the server sends one, even mid-upload.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class RawRequest:
    """One request on its own connection; ``send`` body bytes, ``response`` when the server answers."""

    def __init__(self, port: int, method: str, path: str, headers: dict[str, str], send_buffer: int = 65536) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # A small send buffer keeps "bytes sent" close to "bytes the server could have read".
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        self.sock.sendall(head.encode("latin-1"))
        self.sent = 0
        self._received = b""

    def __enter__(self) -> RawRequest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the server has closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        self.sent += len(data)
        return True

    def answered(self) -> bool:
        """True when response bytes (or the close) are waiting to be read."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def response(self, timeout_s: float = 10.0) -> RawResponse:
        """Read one complete response (the server sends Content-Length on every answer)."""
        deadline = time.monotonic() + timeout_s
        while True:
            head_end = self._received.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = self._received[:head_end].decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
                length = int(headers.get("content-length", "0"))
                status = int(lines[0].split()[1])
                if status == 100:  # an interim "100 Continue": skip it
                    self._received = self._received[head_end + 4:]
                    continue
                if len(self._received) >= head_end + 4 + length:
                    return RawResponse(status, headers, self._received[head_end + 4:head_end + 4 + length])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete response within {timeout_s} s: {self._received[:200]!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionError(f"connection closed before a complete response: {self._received[:200]!r}")
            self._received += chunk

    def closed_by_server(self, timeout_s: float = 3.0) -> bool:
        """True if the server closes the connection within ``timeout_s`` (EOF or reset)."""
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
