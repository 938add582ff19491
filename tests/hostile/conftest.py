"""Fixtures of the hostile-input tests: the e2e stack, plus a strict gateway whose output is kept.

The strict gateway has small limits (1 MiB body, 2 s upload, one request in
flight) so the oversize and slow-body tests are quick and show the slot being
freed, and its stdout/stderr go to a file that the privacy test scans.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from stack.gateway import start_gateway, wait_until_ok
from stack.processes import stop_process
from stack.triton import TritonServer
from tests.conftest import free_port
from tests.e2e.conftest import BOOTSTRAP_KEY, RunningGateway, gateway, gateway_url, http  # noqa: F401
from tests.hostile import report

STRICT_MAX_BODY_BYTES = 1024 * 1024
STRICT_UPLOAD_TIMEOUT_S = 2.0


@pytest.fixture(scope="session", autouse=True)
def hostile_report() -> Iterator[None]:
    """Writes the table of this run's outcomes when IMAGESERVE_HOSTILE_REPORT names a file."""
    yield
    report.write_if_asked()


@dataclass(frozen=True)
class LoggedGateway:
    url: str
    port: int
    database_path: Path
    log_path: Path
    process: subprocess.Popen


@pytest.fixture(scope="session")
def strict_gateway(triton: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedGateway]:
    """A gateway with small limits and its output in ``log_path``, in front of the session's Triton."""
    work = tmp_path_factory.mktemp("strict-gateway")
    database_path, log_path = work / "gateway.db", work / "gateway.log"
    port = free_port()
    process = start_gateway("127.0.0.1", port, triton.ports.grpc, log_path=log_path, extra_env={
        "GATEWAY_DATABASE_URL": f"sqlite:///{database_path}", "GATEWAY_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
        "GATEWAY_MAX_BODY_BYTES": str(STRICT_MAX_BODY_BYTES),
        "GATEWAY_UPLOAD_TIMEOUT_S": str(STRICT_UPLOAD_TIMEOUT_S),
        "GATEWAY_MAX_IN_FLIGHT": "1",
    })
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/readyz", process, timeout_s=30)
        yield LoggedGateway(url, port, database_path, log_path, process)
    finally:
        stop_process(process)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (Triton's python-backend stubs are children)."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total
