"""``python -m stack`` (what `make run` starts): ready, serving, and a clean Ctrl-C."""

import os
import secrets
import signal
import subprocess
import sys

import httpx
import pytest

from stack.gateway import wait_until_ok
from stack.processes import stop_process
from tests.conftest import REPO, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e


def test_stack_serves_and_stops_both_processes_on_ctrl_c(tmp_path, astronaut) -> None:
    gateway, http_port, grpc_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    key = secrets.token_urlsafe(32)
    env = {**os.environ, "GATEWAY_BOOTSTRAP_API_KEY": key,
           "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "stack", "--gateway-port", str(gateway), "--http-port", str(http_port),
         "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port), "--log", str(tmp_path / "triton.log")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        wait_until_ok(f"http://127.0.0.1:{gateway}/readyz", process, timeout_s=120)
        response = httpx.post(f"http://127.0.0.1:{gateway}/v1/mask", content=jpeg_bytes(astronaut),
                              headers={"Content-Type": "image/jpeg", "X-API-Key": key}, timeout=60)
        assert response.status_code == 200
    finally:
        stop_process(process, signal.SIGINT, timeout_s=40)  # Ctrl-C
    assert process.returncode == 0
    for url in (f"http://127.0.0.1:{http_port}/v2/health/live", f"http://127.0.0.1:{gateway}/healthz"):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
    assert "stopped" in process.stderr.read()
