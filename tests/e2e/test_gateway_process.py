"""``python -m gateway`` as operators run it: a separate metrics port, and bad settings refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stack.gateway import start_gateway, wait_until_ok
from stack.processes import stop_process
from tests.conftest import free_port

pytestmark = pytest.mark.e2e


def test_metrics_port_keeps_metrics_off_the_api_port(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    process = start_gateway("127.0.0.1", port, free_port(), extra_env={  # no Triton needed for this
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}", "GATEWAY_METRICS_PORT": str(metrics_port)})
    try:
        wait_until_ok(f"http://127.0.0.1:{port}/healthz", process, timeout_s=30)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        httpx.post(f"http://127.0.0.1:{port}/v1/mask", content=b"x")  # a 401, counted
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scrape.status_code == 200
        assert 'gateway_requests_total{route="mask",status_class="4xx"} 1.0' in scrape.text
    finally:
        stop_process(process)


def test_invalid_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gateway"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GATEWAY_MAX_IN_FLIGHT": "0"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "max_in_flight" in result.stderr and "GATEWAY_" in result.stderr
