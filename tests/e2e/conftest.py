"""The gateway as a real uvicorn process in front of the real Triton."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stack.gateway import start_gateway, stop_process, wait_until_ok
from stack.triton import TritonServer
from tests.conftest import free_port


@pytest.fixture(scope="session")
def gateway_url(triton: TritonServer) -> Iterator[str]:
    port = free_port()
    process = start_gateway("127.0.0.1", port, triton.ports.grpc)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/readyz", process, timeout_s=30)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client
