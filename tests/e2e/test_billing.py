"""Credits through the real gateway and Triton: concurrent requests never overspend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from gateway.admin import main as admin
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import RunningGateway

pytestmark = pytest.mark.e2e


def test_concurrent_requests_spend_exactly_the_credits_there_are(gateway: RunningGateway, capsys) -> None:
    photo = jpeg_bytes(np.full((64, 64, 3), 120, np.uint8))  # mask: 1 + ceil(0.004) = 2 credits
    assert admin(["--database-url", gateway.database_url, "create-tenant", "e2e-buyer", "--credits", "10",
                  "--rate", "1000", "--burst", "1000"]) == 0
    assert admin(["--database-url", gateway.database_url, "create-key", "e2e-buyer"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]

    def one(_: int) -> httpx.Response:
        return httpx.post(f"{gateway.url}/v1/mask", content=photo, timeout=60,
                          headers={"Content-Type": "image/jpeg", "X-API-Key": key})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(16)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [402] * 11
    assert sum(int(r.headers["X-Credits-Charged"]) for r in responses if r.status_code == 200) == 10
    usage = httpx.get(f"{gateway.url}/v1/usage", headers={"X-API-Key": key}).json()
    assert usage["balance"] == 0
    assert [(row["operation"], row["requests"], row["credits"]) for row in usage["usage"]] == [("mask", 5, 10)]
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_rejections_total{reason="quota"}' in metrics and key not in metrics
