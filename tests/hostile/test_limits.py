"""Bodies over the limit and bodies that arrive too slowly, against the strict gateway.

Over the limit: the 413 must come before the body is sent (declared length)
or as soon as the limit is passed (chunked), and the server must drop the
connection rather than drain the rest. Too slow: a 408 when the upload
deadline passes, and the request slot (one, on this gateway) is free again.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.hostile import images as img
from tests.hostile import report
from tests.hostile.conftest import BOOTSTRAP_KEY, STRICT_MAX_BODY_BYTES, STRICT_UPLOAD_TIMEOUT_S, LoggedGateway
from tests.hostile.rawhttp import RawRequest, RawResponse

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
CHUNK = 64 * 1024
INTENDED_BYTES = 64 * 1024 * 1024  # what the "client" would send if nobody stopped it: 64x the limit


def assert_error(response: RawResponse, status: int, code: str) -> None:
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code, response.json()


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_declared_length_over_the_limit_is_refused_before_any_body(strict_gateway: LoggedGateway) -> None:
    started = time.perf_counter()
    headers = {**AUTH, "Content-Type": "image/jpeg", "Content-Length": str(INTENDED_BYTES), "Expect": "100-continue"}
    with RawRequest(strict_gateway.port, "POST", "/v1/mask", headers) as request:
        response = request.response(timeout_s=5)  # sent nothing: the answer comes from the headers alone
        elapsed = time.perf_counter() - started
        report.record("body_declared_64mib", "body size", "Content-Length 64 MiB (limit 1 MiB), no body sent",
                      response.status, response.json()["error"]["code"], elapsed)
        assert_error(response, 413, "payload_too_large")
        assert request.sent == 0
        assert request.closed_by_server(), "the server kept the connection open to drain a body it refused"


def test_body_of_a_refused_type_is_not_read(strict_gateway: LoggedGateway) -> None:
    """A 415 from the Content-Type alone: the connection is dropped, not drained of the 64 MiB declared."""
    started = time.perf_counter()
    headers = {**AUTH, "Content-Type": "text/html", "Content-Length": str(INTENDED_BYTES)}
    with RawRequest(strict_gateway.port, "POST", "/v1/depth", headers) as request:
        response = request.response(timeout_s=5)
        report.record("body_refused_type_64mib", "body size", "text/html body declaring 64 MiB, none sent",
                      response.status, response.json()["error"]["code"], time.perf_counter() - started)
        assert_error(response, 415, "unsupported_media_type")
        assert request.closed_by_server()


def test_chunked_body_over_the_limit_is_cut_off(strict_gateway: LoggedGateway) -> None:
    started = time.perf_counter()
    headers = {**AUTH, "Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
    with RawRequest(strict_gateway.port, "POST", "/v1/mask", headers) as request:
        payload = img.jpeg() + bytes(CHUNK)
        while request.sent < INTENDED_BYTES and not request.answered():
            if not request.send(chunked(payload[:CHUNK])):
                break
        response = request.response(timeout_s=5)
        elapsed = time.perf_counter() - started
        report.record("body_chunked_64mib", "body size", f"chunked body of 64 MiB, no length (limit 1 MiB): "
                      f"{request.sent / 2**20:.1f} MiB sent when the 413 came", response.status,
                      response.json()["error"]["code"], elapsed)
        assert_error(response, 413, "payload_too_large")
        assert request.sent < 8 * STRICT_MAX_BODY_BYTES, f"sent {request.sent} bytes before the 413"
        assert request.closed_by_server(), "the server kept reading a body it refused"


def test_multipart_over_the_limit_is_refused_from_its_length(strict_gateway: LoggedGateway) -> None:
    started = time.perf_counter()
    body = img.multipart([img.image_part(bytes(2 * STRICT_MAX_BODY_BYTES))])
    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=hostileboundary",
               "Content-Length": str(len(body))}
    with RawRequest(strict_gateway.port, "POST", "/v1/cutout", headers) as request:
        response = request.response(timeout_s=5)
        report.record("multipart_declared_2mib", "body size", "multipart form of 2 MiB (limit 1 MiB + 64 KiB)",
                      response.status, response.json()["error"]["code"], time.perf_counter() - started)
        assert_error(response, 413, "payload_too_large")


def _trickle(request: RawRequest, data: bytes, stop: threading.Event, interval_s: float) -> None:
    for byte in data:
        if stop.is_set() or not request.send(bytes([byte])):
            return
        time.sleep(interval_s)


@pytest.mark.parametrize("mode", ["trickled", "stalled_chunked"])
def test_slow_body_times_out_and_frees_the_slot(strict_gateway: LoggedGateway, mode: str) -> None:
    """One request slot: a slow upload holds it (others get 503) until the 408, then it serves again."""
    photo = img.jpeg()
    if mode == "trickled":
        headers = {**AUTH, "Content-Type": "image/jpeg", "Content-Length": str(len(photo))}
    else:
        headers = {**AUTH, "Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
    stop = threading.Event()
    with httpx.Client(base_url=strict_gateway.url, headers=AUTH, timeout=30) as client, \
            RawRequest(strict_gateway.port, "POST", "/v1/mask", headers) as request:
        started = time.perf_counter()
        if mode == "trickled":  # 10 bytes a second: the photo would take 40 minutes
            sender = threading.Thread(target=_trickle, args=(request, photo, stop, 0.1), daemon=True)
        else:  # half the photo in one chunk, then silence
            sender = threading.Thread(target=request.send, args=(chunked(photo[:len(photo) // 2]),), daemon=True)
        sender.start()
        try:
            time.sleep(0.5)
            busy = client.post("/v1/mask", content=photo, headers={"Content-Type": "image/jpeg"})
            assert busy.status_code == 503, "the slow upload should hold the only request slot"
            response = request.response(timeout_s=STRICT_UPLOAD_TIMEOUT_S + 5)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            sender.join(timeout=5)
        report.record(f"body_{mode}", "slow body", f"{mode.replace('_', ' ')} upload (upload timeout "
                      f"{STRICT_UPLOAD_TIMEOUT_S:g} s)", response.status, response.json()["error"]["code"], elapsed)
        assert_error(response, 408, "request_timeout")
        assert STRICT_UPLOAD_TIMEOUT_S - 0.2 <= elapsed <= STRICT_UPLOAD_TIMEOUT_S + 2, elapsed
        assert request.closed_by_server()
        after = client.post("/v1/mask", content=photo, headers={"Content-Type": "image/jpeg"})
        assert after.status_code == 200, after.text
        assert client.get("/readyz").status_code == 200
