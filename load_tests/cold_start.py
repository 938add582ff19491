"""Cold start: ``make run`` on a prepared machine to ready, and the first request after ready.

"Prepared" means the virtualenv and the models are built, so ``make run``
only checks them and starts Triton and the gateway. The clock runs from
starting the command to the gateway's ``/readyz`` answering 200; then each
operation's first request is timed and compared with its steady-state p50
(sequential requests right after). If the virtualenv is out of date ``make``
would reinstall it, which is not a cold start: ``python -m stack`` (what
``make run`` runs) is timed instead and the report says so.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imaging.geometry import output_size
from load_tests.http_client import HttpConnection
from load_tests.operations import Operation
from load_tests.photos import SIZES, photo_jpeg
from load_tests.png_check import BadResponse, check_png
from load_tests.services import REPO, free_port
from stack.gateway import wait_until_ok

STOP_TIMEOUT_S = 40


@dataclass
class ColdStart:
    command: str
    ready_s: list[float] = field(default_factory=list)
    first_ms: dict[str, list[float]] = field(default_factory=dict)
    steady_ms: dict[str, list[float]] = field(default_factory=dict)


def start_command() -> list[str]:
    """``make run`` when make has nothing to rebuild first, else what it would run."""
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, capture_output=True).returncode == 0
    return ["make", "-s", "run"] if up_to_date else [sys.executable, "-m", "stack"]


async def _timed_requests(port: int, key: str, operation: Operation, photo: str, count: int) -> list[float]:
    """Latencies (ms) of ``count`` sequential requests on one connection, each response checked."""
    connection = HttpConnection("127.0.0.1", port)
    data, size = photo_jpeg(photo), output_size(SIZES[photo], 0)
    headers = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {key}"}
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            response = await connection.post(operation.http_path, data, headers)
            latencies.append((time.perf_counter() - started) * 1e3)
            if response.status != 200:
                raise BadResponse(f"{operation.http_path}: HTTP {response.status} {response.body[:200]!r}")
            check_png(response.body, size, operation.png_kind)
    finally:
        await connection.close()
    return latencies


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C, as a person would: the whole process group gets SIGINT."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure_cold_start(operations: list[Operation], photo: str, repeats: int, steady_requests: int) -> ColdStart:
    command = start_command()
    result = ColdStart(" ".join(command[:3]) if command[0] == "make" else "python -m stack")
    for _ in range(repeats):
        gateway_port = free_port()
        key = secrets.token_urlsafe(32)
        with tempfile.TemporaryDirectory(prefix="imageserve-cold-start-") as tmp:
            env = {**os.environ, "GATEWAY_PORT": str(gateway_port), "TRITON_HTTP_PORT": str(free_port()),
                   "TRITON_GRPC_PORT": str(free_port()), "TRITON_METRICS_PORT": str(free_port()),
                   "GATEWAY_BOOTSTRAP_API_KEY": key, "GATEWAY_DATABASE_URL": f"sqlite:///{Path(tmp) / 'gateway.db'}"}
            started = time.perf_counter()
            process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until_ok(f"http://127.0.0.1:{gateway_port}/readyz", process, timeout_s=120)
                result.ready_s.append(time.perf_counter() - started)
                for operation in operations:  # each operation's first call, before any other load on it
                    first = asyncio.run(_timed_requests(gateway_port, key, operation, photo, 1))
                    result.first_ms.setdefault(operation.name, []).extend(first)
                for operation in operations:
                    steady = asyncio.run(_timed_requests(gateway_port, key, operation, photo, steady_requests))
                    result.steady_ms.setdefault(operation.name, []).extend(steady)
            finally:
                _stop(process)
    return result
