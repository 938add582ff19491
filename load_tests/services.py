"""The processes a benchmark measures, started on free ports and always stopped.

Triton (``stack.triton.TritonServer``), the gateway (``stack.gateway``, with its
own SQLite file and a bootstrap API key) and the naive baseline
(``load_tests.naive_app`` under uvicorn) run as real processes, exactly as
``make run`` starts them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stack.gateway import start_gateway, wait_until_ok
from stack.ports import free_port
from stack.processes import stop_process
from stack.triton import TritonPorts, TritonServer

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"


@dataclass(frozen=True)
class HttpService:
    """A running HTTP server process: where it listens and its pid (for CPU and memory sampling)."""

    url: str
    port: int
    pid: int
    api_key: str = ""


@contextmanager
def running_triton(repository: Path = MODEL_REPOSITORY, log_path: Path | None = None) -> Iterator[TritonServer]:
    ports = TritonPorts(free_port(), free_port(), free_port())
    log = log_path or Path(tempfile.mkdtemp(prefix="imageserve-bench-")) / "triton.log"
    with TritonServer(repository, ports, log_path=log) as server:
        yield server


@contextmanager
def running_gateway(triton_grpc_port: int, extra_env: dict[str, str] | None = None) -> Iterator[HttpService]:
    """The gateway in front of Triton, with a fresh SQLite ledger and an admin key with ample credits."""
    port = free_port()
    key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="imageserve-bench-gateway-") as tmp:
        process = start_gateway("127.0.0.1", port, triton_grpc_port, extra_env={
            "GATEWAY_DATABASE_URL": f"sqlite:///{Path(tmp) / 'gateway.db'}",
            "GATEWAY_BOOTSTRAP_API_KEY": key, **(extra_env or {}),
        })
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ok(f"{url}/readyz", process, timeout_s=60)
            yield HttpService(url, port, process.pid, key)
        finally:
            stop_process(process)


@contextmanager
def running_naive_app(repository: Path = MODEL_REPOSITORY) -> Iterator[HttpService]:
    """The no-Triton baseline: one uvicorn process, inline decode + ONNX Runtime + PNG per request."""
    port = free_port()
    env = {**os.environ, "NAIVE_MODEL_REPOSITORY": str(repository)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "load_tests.naive_app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=env, cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/healthz", process, timeout_s=60)
        yield HttpService(url, port, process.pid)
    finally:
        stop_process(process)
