"""The gateway as a real uvicorn process in front of the real Triton."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from stack.gateway import start_gateway, wait_until_ok
from stack.processes import stop_process
from stack.triton import TritonServer
from tests.conftest import free_port

BOOTSTRAP_KEY = secrets.token_urlsafe(32)


@dataclass(frozen=True)
class RunningGateway:
    url: str
    database_url: str
    process: subprocess.Popen


@contextmanager
def running_gateway(triton: TritonServer, work: Path, settings: dict[str, str] | None = None,
                    log_path: Path | None = None) -> Iterator[RunningGateway]:
    """``python -m gateway`` on a free port with a SQLite database in ``work`` and the admin key
    ``BOOTSTRAP_KEY``, plus ``settings`` (GATEWAY_* variables); ready when entered, stopped on exit."""
    port = free_port()
    database_url = f"sqlite:///{work / 'gateway.db'}"
    process = start_gateway("127.0.0.1", port, triton.ports.grpc, log_path=log_path, extra_env={
        "GATEWAY_DATABASE_URL": database_url, "GATEWAY_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY, **(settings or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/readyz", process, timeout_s=30)
        yield RunningGateway(url, database_url, process)
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def gateway(triton: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The gateway with its own SQLite database and an admin key with plenty of credits."""
    with running_gateway(triton, tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture(scope="session")
def gateway_url(gateway: RunningGateway) -> str:
    return gateway.url


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}) as client:
        yield client
