"""Closed-loop load: N workers, each sending its next request when its last one answered; and what it loads.

The warm-up lasts ``warmup_s`` and until every worker has had an answer; the window then lasts ``duration_s``,
or ``min_rounds`` times the warm-up's median latency if longer (a shorter one would count 0 or 8 completions of
a U2-Netp batch). Throughput counts the successes completed inside the window: a failing target never looks fast.
``TritonGrpcTarget`` calls an ensemble over one shared gRPC channel, as the gateway does; ``HttpTarget`` posts on
a keep-alive connection per worker with a minimal HTTP/1.1 client (httpx's Python per request would count as
gateway overhead on 2 shared cores). Every answer is checked before it counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from statistics import median

import numpy as np
import tritonclient.grpc.aio as grpcclient

from contract.product import TENSORS
from load_tests.operations import Operation
from load_tests.png_check import check_png
from load_tests.traffic_mix import check_answer

MIN_ROUNDS = 4
MAX_WINDOW_S = 60.0


def percentiles_ms(seconds: list[float], quantiles: tuple[int, ...] = (50, 95, 99)) -> list[float]:
    """Linear-interpolated percentiles (as numpy) in ms; NaN for an empty sample."""
    if not seconds:
        return [float("nan")] * len(quantiles)
    return [float(np.percentile(np.asarray(seconds) * 1e3, q)) for q in quantiles]


@dataclass
class RunResult:
    """One run: the window's latencies and errors; ``completed`` counts the warm-up's successes too."""

    concurrency: int
    window_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    completed: int = 0

    @property
    def throughput(self) -> float:
        """Successful requests per second inside the window."""
        return len(self.latencies_s) / self.window_s if self.window_s else 0.0


def _count(result: RunResult, window: list[float], warmup: list[float], error: str, sent: float, done: float) -> None:
    """One answer: a warm-up latency, a latency in the window, or an error in the window (after it: nothing)."""
    inside = bool(window) and window[0] <= done <= window[1]
    result.completed += not error
    if not error and (inside or not window):
        (result.latencies_s if window else warmup).append(done - sent)
    elif error and inside:
        result.errors += 1
        result.first_error = result.first_error or error


async def run_closed_loop(target, concurrency: int, duration_s: float, warmup_s: float,  # noqa: ANN001
                          min_rounds: int = MIN_ROUNDS) -> RunResult:
    """Load ``target`` (``open(workers)``, ``send(worker)``, ``close()``) with ``concurrency`` requests in flight."""
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0 or min_rounds < 0:
        raise ValueError(f"need concurrency >= 1, duration > 0, warm-up >= 0, min_rounds >= 0; "
                         f"got {concurrency}, {duration_s}, {warmup_s}, {min_rounds}")
    result, warmup, answered = RunResult(concurrency), [], [False] * concurrency
    window: list[float] = []  # [start, end] once the warm-up is over
    warmed_up, started = asyncio.Event(), time.perf_counter()

    async def worker(index: int) -> None:
        while not window or time.perf_counter() < window[1]:
            sent, error = time.perf_counter(), ""
            try:
                await target.send(index)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the load goes on
                error = f"{type(exc).__name__}: {exc}"[:300]
            _count(result, window, warmup, error, sent, time.perf_counter())
            answered[index] = True
            if all(answered) and time.perf_counter() - started >= warmup_s:
                warmed_up.set()

    async def open_window() -> None:
        await asyncio.sleep(warmup_s)
        if not all(answered):
            await warmed_up.wait()
        result.window_s = min(MAX_WINDOW_S, max(duration_s, min_rounds * (median(warmup) if warmup else 0.0)))
        window.extend([time.perf_counter(), time.perf_counter() + result.window_s])

    await target.open(concurrency)
    try:
        await asyncio.gather(open_window(), *(worker(i) for i in range(concurrency)))
    finally:
        await target.close()
    return result


class TritonGrpcTarget:
    def __init__(self, url: str, operation: Operation, photo: bytes, size: tuple[int, int]) -> None:
        self.url, self.operation, self.photo, self.size, self._client = url, operation, photo, size, None

    async def open(self, workers: int) -> None:
        self._client = grpcclient.InferenceServerClient(url=self.url)

    async def send(self, worker: int) -> None:
        image = grpcclient.InferInput(TENSORS.image, [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[self.photo]], dtype=np.object_))
        side = grpcclient.InferInput(TENSORS.max_side, [1, 1], "INT32")
        side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
        outputs = [grpcclient.InferRequestedOutput(name) for name in self.operation.triton_outputs]
        result = await self._client.infer(self.operation.ensemble, [image, side], outputs=outputs)
        check_png(bytes(result.as_numpy(self.operation.png_output).reshape(-1)[0]), self.size, self.operation.png_kind)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class HttpTarget:
    """POSTs the photo on one connection per worker; the gateway's answers (with an API key) must be billed."""

    def __init__(self, port: int, operation: Operation, photo: bytes, size: tuple[int, int], api_key: str = "") -> None:
        self.port, self.operation, self.size, self.billed = port, operation, size, bool(api_key)
        self.request = self.build_request(photo, api_key)
        self._connections: list = []

    def build_request(self, photo: bytes, api_key: str) -> bytes:
        """The bytes each worker sends: the gateway's raw-body POST (a subclass may post another server's way)."""
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        return (f"POST {self.operation.http_path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: "
                f"image/jpeg\r\n{auth}Content-Length: {len(photo)}\r\n\r\n").encode("latin-1") + photo

    async def open(self, workers: int) -> None:
        self._connections = [None] * workers

    async def send(self, worker: int) -> None:
        if self._connections[worker] is None:
            self._connections[worker] = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        reader, writer = self._connections[worker]
        writer.write(self.request)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {name.strip().lower(): value.strip() for name, _, value in
                       (line.partition(":") for line in head[1:] if line)}
            body = await reader.readexactly(int(headers["content-length"]))
        except (asyncio.IncompleteReadError, ConnectionError, KeyError, ValueError):
            await self._close(worker)  # a broken or unframed answer: the next request reconnects
            raise
        if headers.get("connection", "").lower() == "close":
            await self._close(worker)
        status = head[0][9:12]  # HTTP/1.1 200 OK
        self.check(int(status) if status.isdigit() else 0, headers, body)

    def check(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Raise unless the answer is the operation's (``check_answer``); a subclass may check another server's."""
        check_answer(self.operation, status, headers, body, self.size, self.billed)

    async def _close(self, worker: int) -> None:
        connection, self._connections[worker] = self._connections[worker], None
        if connection is not None:
            connection[1].close()
            with contextlib.suppress(ConnectionError):
                await connection[1].wait_closed()

    async def close(self) -> None:
        for worker in range(len(self._connections)):
            await self._close(worker)
