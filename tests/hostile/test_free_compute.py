"""Leaving just before the answer, repeatedly, through the real gateway and Triton: unbilled, but the
work it can take from Triton is bounded by the tenant's allowance of unbilled failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from gateway.db import make_engine, session_factory
from gateway.keys import create_key
from gateway.ledger import audit
from gateway.tenants import create_tenant
from stack.triton import TritonServer
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import running_gateway

pytestmark = pytest.mark.e2e

ALLOWANCE = 3


@pytest.fixture(scope="module")
def strict(triton: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_gateway(triton, tmp_path_factory.mktemp("free-compute"),
                         {"GATEWAY_MAX_UNBILLED_FAILURES_PER_MINUTE": str(ALLOWANCE)}) as running:
        yield running.url, running.database_url


def _cancelled(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return next((float(r.split()[-1]) for r in text.splitlines() if r.startswith("gateway_cancelled_inferences")), 0.0)


def test_leaving_before_each_answer_is_bounded_per_tenant(strict: tuple[str, str], astronaut: np.ndarray) -> None:
    url, database_url = strict
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    tenant = create_tenant(sessions, "leaver", credits=1000)
    key = create_key(sessions, "leaver")[1]
    photo = jpeg_bytes(astronaut)
    headers = {"X-API-Key": key, "Content-Type": "image/jpeg"}
    latencies = []
    for _ in range(3):
        started = time.perf_counter()
        assert httpx.post(f"{url}/v1/mask?model=object", content=photo, headers=headers, timeout=30).is_success
        latencies.append(time.perf_counter() - started)
    leave_after_s = 0.85 * min(latencies)  # leave just before the answer, as late as this machine allows
    before = _cancelled(url)
    outcomes = []
    for _ in range(6 * ALLOWANCE):
        try:
            answer = httpx.post(f"{url}/v1/mask?model=object", content=photo, headers=headers, timeout=leave_after_s)
            outcomes.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["error"]["code"] == "too_many_failed_requests"
                break
        except httpx.TimeoutException:
            outcomes.append("left")
    assert outcomes[-1] == 429, outcomes
    cancelled = _cancelled(url) - before
    assert outcomes.count("left") <= ALLOWANCE + 2 and cancelled <= ALLOWANCE + 1, (outcomes, cancelled)
    books = audit(sessions, tenant.id)
    assert books.balanced, books
    engine.dispose()
