"""Oversized request heads and bodies a route never reads, over raw sockets against the real gateway.

Before: httptools buffered any head, so a 32 MB header cost seconds of CPU (quadratic) and unbounded
memory before the app saw it; and a route that ignores its body (``/healthz`` with a huge
``Content-Length``) left the connection waiting forever for that body.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import psutil
import pytest

from gateway.http_protocol import MAX_HEAD_BYTES
from tests.e2e.conftest import RunningGateway
from tests.hostile import report

pytestmark = pytest.mark.e2e

CHUNK = 256 * 1024


def _port(gateway: RunningGateway) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


def _send_until_answered(port: int, head_start: bytes, filler: bytes, total: int) -> tuple[bytes, int, bool]:
    """Send ``head_start`` then ``filler`` up to ``total`` bytes, stopping when the server answers or
    closes; returns (what the server sent, bytes sent, whether the server closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head_start)
        sent = len(head_start)
        sock.setblocking(False)
        answer = b""
        while sent < total:
            try:
                sock.send(filler[: min(len(filler), total - sent)])
                sent += min(len(filler), total - sent)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
        sock.settimeout(5)
        closed = False
        try:
            while chunk := sock.recv(65536):
                answer += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
        return answer, sent, closed


class HealthPoller:
    def __init__(self, url: str) -> None:
        self.url, self.latencies, self._stop = url, [], threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get(f"{self.url}/healthz")
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.05)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def worst_ms(self) -> float:
        return max(self.latencies) * 1000


BOMBS = {
    "header_64mib": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bomb: ", b"a" * CHUNK, 64 * 2**20),
    "million_headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-A: b\r\n" * (CHUNK // 8), 8 * 10**6),
    "url_8mib": (b"GET /healthz?q=", b"a" * CHUNK, 8 * 2**20),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_an_oversized_head_gets_431_and_a_closed_connection(gateway: RunningGateway, bomb: str) -> None:
    head_start, filler, total = BOMBS[bomb]
    rss_before = psutil.Process(gateway.process.pid).memory_info().rss
    with HealthPoller(gateway.url) as health:
        started = time.perf_counter()
        answer, sent, closed = _send_until_answered(_port(gateway), head_start, filler, total)
        elapsed = time.perf_counter() - started
        time.sleep(0.3)
    report.record(bomb, "request head", f"{total // 2**20} MiB of request head sent at the gateway",
                  int(answer.split(b" ", 2)[1]) if answer else 0, "request_header_fields_too_large", elapsed)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"request_header_fields_too_large" in answer
    assert closed, "the connection stayed open after the 431"
    growth = psutil.Process(gateway.process.pid).memory_info().rss - rss_before
    assert growth < 16 * 2**20, f"the gateway grew by {growth / 2**20:.0f} MiB ({sent} bytes sent)"
    assert elapsed < 2.0
    assert health.worst_ms() < 250, f"/healthz took {health.worst_ms():.0f} ms during the bomb"


def test_a_head_under_the_bound_is_served(gateway: RunningGateway) -> None:
    headers = {f"X-Pad-{i}": "v" * 100 for i in range((MAX_HEAD_BYTES - 2048) // 120)}
    assert httpx.get(f"{gateway.url}/healthz", headers=headers).status_code == 200


def test_a_declared_body_that_never_comes_does_not_hold_the_connection(gateway: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        answer = b""
        started = time.perf_counter()
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        elapsed = time.perf_counter() - started
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert elapsed < 5, "the server kept the connection waiting for the declared body"
