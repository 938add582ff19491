"""A multipart form of millions of tiny parts must not stall the event loop or fill the heap.

Before the fix the gateway read the whole 30 MiB form, then parsed it in one synchronous call that
kept an entry per part: seconds of a blocked loop (every request on the pod waits, liveness fails)
and hundreds of MB, for the price of a key with no credits.
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest

from gateway.db import make_engine, session_factory
from gateway.keys import create_key
from gateway.tenants import create_tenant
from gateway.upload import MAX_PARTS
from tests.e2e.conftest import RunningGateway
from tests.hostile import report
from tests.hostile.conftest import tree_rss
from tests.hostile.rawhttp import RawRequest

pytestmark = pytest.mark.e2e

BOUNDARY = "flood"
TINY_PART = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n".encode()
FORM_BYTES = 30 * 1024 * 1024 - 1024  # just inside the gateway's default body limit


def _zero_credit_key(gateway: RunningGateway) -> str:
    engine = make_engine(gateway.database_url)
    try:
        sessions = session_factory(engine)
        create_tenant(sessions, "flooder", credits=0)
        return create_key(sessions, "flooder")[1]
    finally:
        engine.dispose()


def _poll_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{url}/healthz")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.1)


def test_a_flood_of_tiny_parts_is_refused_fast_without_stalling_the_gateway(gateway: RunningGateway) -> None:
    key = _zero_credit_key(gateway)
    body = TINY_PART * (FORM_BYTES // len(TINY_PART)) + f"--{BOUNDARY}--\r\n".encode()
    rss_before = tree_rss(gateway.process.pid)
    latencies: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll_health, args=(gateway.url, stop, latencies))
    poller.start()
    try:
        time.sleep(0.3)
        started = time.perf_counter()
        headers = {"X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                   "Content-Length": str(len(body))}
        with RawRequest(int(gateway.url.rsplit(":", 1)[1]), "POST", "/v1/mask", headers) as request:
            for offset in range(0, len(body), 64 * 1024):
                if request.answered() or not request.send(body[offset:offset + 64 * 1024]):
                    break
            response = request.response(timeout_s=30)
            elapsed = time.perf_counter() - started
            closed = request.closed_by_server()
            sent = request.sent
        time.sleep(0.5)
    finally:
        stop.set()
        poller.join()
    rss_growth = tree_rss(gateway.process.pid) - rss_before
    parts = len(body) // len(TINY_PART)
    report.record("multipart_part_flood", "multipart", f"30 MiB form of {parts} tiny parts, zero-credit key",
                  response.status, response.json()["error"]["code"], elapsed)
    assert response.status == 400 and response.json()["error"]["code"] == "too_many_parts", response.body[:300]
    assert str(MAX_PARTS) in response.json()["error"]["message"]
    assert elapsed < 2.0, f"refusal took {elapsed:.2f} s"
    assert sent < len(body) // 4, f"the gateway read {sent} of {len(body)} bytes before refusing"
    assert closed, "the connection was kept open to drain the rest of the flood"
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    assert len(latencies) >= 5 and p99 < 0.1, f"/healthz p99 {p99 * 1000:.0f} ms, median " \
                                             f"{statistics.median(latencies) * 1000:.0f} ms during the flood"
    assert rss_growth < 64 * 1024 * 1024, f"gateway memory grew by {rss_growth / 2**20:.0f} MiB"
