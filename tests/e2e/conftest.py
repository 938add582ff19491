"""The gateway as a real uvicorn process in front of the real Triton."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from stack.triton import TritonServer
from tests.conftest import free_port


@pytest.fixture(scope="session")
def gateway_url(triton: TritonServer) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "GATEWAY_TRITON_GRPC_URL": f"127.0.0.1:{triton.ports.grpc}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway did not become ready (exit code {process.poll()})")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client
