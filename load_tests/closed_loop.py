"""Closed-loop load: N workers, each sending its next request when the last one answered; and what it loads.

The warm-up lasts ``warmup_s`` and at least until every worker has had one
answer; the measured window then lasts ``duration_s``, or longer when
requests are slow: at least ``min_rounds`` times the warm-up's median latency,
so that each worker completes several requests inside it (a window shorter
than one batch of U2-Netp would count 0 or 8 completions, nothing between).
Throughput counts the successful requests that complete inside the window,
whenever they were sent; a failing target never looks fast.

Targets: ``TritonGrpcTarget`` calls a Triton ensemble over gRPC (KServe v2) on one shared asyncio
channel, as internal services and the gateway do; ``HttpTarget`` an HTTP endpoint (the gateway or the
naive baseline) on one keep-alive connection per worker. Every response is checked (status, PNG size
and kind) before it counts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from statistics import median
from typing import Protocol

import numpy as np
import tritonclient.grpc.aio as grpcclient

from contract.product import TENSORS
from load_tests.http_client import HttpConnection
from load_tests.operations import Operation
from load_tests.png_check import BadResponse, check_png

MIN_ROUNDS = 4
MAX_WINDOW_S = 60.0


class Target(Protocol):
    """Something to load: opened for a number of workers, then ``send(worker)`` per request."""

    async def open(self, workers: int) -> None: ...

    async def send(self, worker: int) -> None:
        """One request; raises on any failure, including a wrong response body."""

    async def close(self) -> None: ...


@dataclass
class RunResult:
    concurrency: int
    window_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    completed: int = 0  # successful requests over the whole run, warm-up included (for CPU per request)

    @property
    def throughput(self) -> float:
        """Successful requests per second inside the window."""
        return len(self.latencies_s) / self.window_s if self.window_s else 0.0


@dataclass
class _Window:
    start: float = 0.0
    end: float | None = None  # None while warming up

    def holds(self, moment: float) -> bool:
        return self.end is not None and self.start <= moment <= self.end

    def record(self, result: RunResult, warmup_latencies: list[float], error: str, sent: float, done: float) -> None:
        """Count one answer: in the warm-up's latencies, in the window's, or as an error inside the window."""
        if not error:
            result.completed += 1
            if self.end is None:
                warmup_latencies.append(done - sent)
            elif self.holds(done):
                result.latencies_s.append(done - sent)
        elif self.holds(done):
            result.errors += 1
            result.first_error = result.first_error or error


async def _attempt(target: Target, worker: int) -> str:
    """One request: "" when it succeeded, else the error in one line."""
    try:
        await target.send(worker)
    except Exception as exc:  # noqa: BLE001 - counted and reported; the load goes on
        return f"{type(exc).__name__}: {exc}"[:300] or "error"
    return ""


async def run_closed_loop(target: Target, concurrency: int, duration_s: float, warmup_s: float,
                          min_rounds: int = MIN_ROUNDS) -> RunResult:
    """Load ``target`` with ``concurrency`` requests in flight: warm-up, then one measured window."""
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0 or min_rounds < 0:
        raise ValueError(f"need concurrency >= 1, duration > 0, warm-up >= 0, min_rounds >= 0; "
                         f"got {concurrency}, {duration_s}, {warmup_s}, {min_rounds}")
    result = RunResult(concurrency)
    window = _Window()
    warmup_latencies: list[float] = []
    answered = [False] * concurrency
    warmed_up = asyncio.Event()
    started = time.perf_counter()

    async def worker(index: int) -> None:
        while window.end is None or time.perf_counter() < window.end:
            sent = time.perf_counter()
            error = await _attempt(target, index)
            window.record(result, warmup_latencies, error, sent, time.perf_counter())
            answered[index] = True
            if all(answered) and time.perf_counter() - started >= warmup_s:
                warmed_up.set()

    async def open_window() -> None:
        await asyncio.sleep(warmup_s)
        if not all(answered):
            await warmed_up.wait()
        typical = median(warmup_latencies) if warmup_latencies else 0.0
        result.window_s = min(MAX_WINDOW_S, max(duration_s, min_rounds * typical))
        window.start = time.perf_counter()
        window.end = window.start + result.window_s

    await target.open(concurrency)
    try:
        await asyncio.gather(open_window(), *(worker(i) for i in range(concurrency)))
    finally:
        await target.close()
    return result


class TritonGrpcTarget:
    def __init__(self, url: str, operation: Operation, photo: bytes, size: tuple[int, int]) -> None:
        self.url = url
        self.operation = operation
        self.photo = photo
        self.size = size
        self._client: grpcclient.InferenceServerClient | None = None

    async def open(self, workers: int) -> None:
        self._client = grpcclient.InferenceServerClient(url=self.url)

    async def send(self, worker: int) -> None:
        assert self._client is not None
        image = grpcclient.InferInput(TENSORS.image, [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[self.photo]], dtype=np.object_))
        side = grpcclient.InferInput(TENSORS.max_side, [1, 1], "INT32")
        side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
        result = await self._client.infer(
            self.operation.ensemble, [image, side],
            outputs=[grpcclient.InferRequestedOutput(name) for name in self.operation.triton_outputs],
        )
        check_png(bytes(result.as_numpy(self.operation.png_output).reshape(-1)[0]), self.size, self.operation.png_kind)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class HttpTarget:
    def __init__(self, port: int, operation: Operation, photo: bytes, size: tuple[int, int], api_key: str = "") -> None:
        self.port = port
        self.operation = operation
        self.photo = photo
        self.size = size
        self.headers = {"Content-Type": "image/jpeg"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._connections: list[HttpConnection] = []

    async def open(self, workers: int) -> None:
        self._connections = [HttpConnection("127.0.0.1", self.port) for _ in range(workers)]

    async def send(self, worker: int) -> None:
        response = await self._connections[worker].post(self.operation.http_path, self.photo, self.headers)
        if response.status != 200:
            raise BadResponse(f"HTTP {response.status}: {response.body[:200]!r}")
        check_png(response.body, self.size, self.operation.png_kind)

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        self._connections = []
