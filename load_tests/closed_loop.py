"""Closed-loop load: N workers, each sending its next request when the last one answered.

The warm-up lasts ``warmup_s`` and at least until every worker has had one
answer; the measured window then lasts ``duration_s``, or longer when
requests are slow: at least ``min_rounds`` times the warm-up's median latency,
so that each worker completes several requests inside it (a window shorter
than one batch of U2-Netp would count 0 or 8 completions, nothing between).
Throughput counts the successful requests that complete inside the window,
whenever they were sent; a failing target never looks fast.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from statistics import median
from typing import Protocol

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

    def answer(worker: int) -> None:
        answered[worker] = True
        if all(answered) and time.perf_counter() - started >= warmup_s and not warmed_up.is_set():
            warmed_up.set()

    async def worker(index: int) -> None:
        while window.end is None or time.perf_counter() < window.end:
            sent = time.perf_counter()
            try:
                await target.send(index)
            except Exception as exc:  # counted and reported; the load goes on
                done = time.perf_counter()
                if window.end is not None and window.start <= done <= window.end:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"[:300]
                answer(index)
                continue
            done = time.perf_counter()
            result.completed += 1
            if window.end is None:
                warmup_latencies.append(done - sent)
            elif window.start <= done <= window.end:
                result.latencies_s.append(done - sent)
            answer(index)

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
