"""The hostile-input corpus through the real gateway and Triton.

Each case gets exactly its status: 2xx with a metadata-free PNG whose content
is checked, or 4xx with a JSON error naming the problem, within a bounded
time. Afterwards the stack is still ready and answered no 5xx at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.hostile import images as img
from tests.hostile import report
from tests.hostile.cases import CASES, PNG_ALLOWED_CHUNKS, Case, Reference, case_ids, decode_png, png_chunks
from tests.hostile.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}) as http:
        yield http


@pytest.fixture(scope="module")
def reference(client: httpx.Client) -> Reference:
    response = client.post("/v1/mask", params={"model": "fast"}, content=img.png(),
                           headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return Reference(decode_png(response.content) >= 128)


def assert_answer(case: Case, response: httpx.Response, reference: Reference) -> None:
    """The status, then either a clean PNG with the right content or a JSON error with the right code."""
    assert response.status_code == case.status, f"{case.id}: {response.status_code} {response.text[:300]}"
    if response.status_code < 300:
        assert response.headers["content-type"] == "image/png"
        chunks = png_chunks(response.content)
        assert set(chunks) <= PNG_ALLOWED_CHUNKS, f"metadata chunks in the output: {set(chunks) - PNG_ALLOWED_CHUNKS}"
        if case.check is not None:
            case.check(decode_png(response.content), reference)
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] == response.headers["X-Request-Id"], body
    assert body["error"]["code"] == case.code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip(), body


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_case(case: Case, client: httpx.Client, reference: Reference) -> None:
    request = case.build(client)
    started = time.perf_counter()
    response = client.send(request)
    elapsed = time.perf_counter() - started
    code = response.json()["error"]["code"] if response.status_code >= 400 and response.content else ""
    report.record(case.id, case.category, case.what, response.status_code, code, elapsed)
    assert_answer(case, response, reference)
    assert elapsed <= case.max_s, f"{case.id} took {elapsed:.1f} s, over {case.max_s} s"


def test_orientation_checks_can_fail(reference: Reference) -> None:
    """A wrongly oriented output would fail the checks: mirrored mattes and colours are far from the photo's.

    (Transposing orientations also change the output's shape, which the checks compare first.)
    """
    mask, photo = reference.mask, img.photo().astype(int)
    assert mask.mean() > 0.1
    for flip in (lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1]):
        assert (mask & flip(mask)).sum() / (mask | flip(mask)).sum() < 0.8  # checks want >= 0.9
        assert np.abs(photo - flip(photo))[mask].mean() > 20  # checks want <= 6


def test_corpus_is_broad() -> None:
    categories = {case.category for case in CASES}
    assert len(CASES) >= 30 and len(categories) >= 8, (len(CASES), categories)
    assert {case.status // 100 for case in CASES} == {2, 4}


def test_stack_stays_ready_and_answered_no_5xx(client: httpx.Client) -> None:
    """Runs after the corpus (file order): readiness, a normal request, and no 5xx counted by the gateway."""
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/mask", content=img.jpeg(), headers={"Content-Type": "image/jpeg"}).status_code == 200
    metrics = client.get("/metrics").text
    server_errors = [line for line in metrics.splitlines()
                     if line.startswith("gateway_requests_total{") and 'status_class="5xx"' in line
                     and float(line.split()[-1]) > 0]
    assert not server_errors, server_errors
