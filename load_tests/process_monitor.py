"""CPU use and peak memory (RSS) of the benchmark's processes, sampled with psutil.

Triton is watched with its children (each python-backend step runs in its own
stub process); RSS of a tree is the sum over its processes, which counts
shared pages (libraries, shared-memory tensors) once per process: an upper
bound. CPU is measured exactly per phase from cumulative CPU times; the
machine's other load is what the whole machine used minus our processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

BYTES_PER_MIB = 2**20
# Finding children scans all of /proc (~4 ms, holding the GIL of the process that also generates load):
# the list of a tree's processes is refreshed this often, not at every sample.
CHILDREN_REFRESH_S = 2.0


@dataclass
class PhaseUsage:
    """What each watched process used during one phase (``cores`` = CPU seconds per second)."""

    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    machine_busy_s: float = 0.0

    @property
    def other_cores(self) -> float:
        """CPU used by processes the benchmark does not watch (other work on the machine)."""
        ours = sum(self.cpu_s.values())
        return max(0.0, self.machine_busy_s - ours) / self.wall_s if self.wall_s else 0.0


class ProcessMonitor:
    """Watch named processes (optionally with children); measure phases; sample peak RSS in a thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self._watched: dict[str, tuple[psutil.Process, bool]] = {}
        self._children: dict[str, tuple[float, list[psutil.Process]]] = {}
        self._open_phases: list[PhaseUsage] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, pid: int, with_children: bool) -> None:
        with self._lock:
            self._watched[name] = (psutil.Process(pid), with_children)

    def _members(self, name: str) -> list[psutil.Process]:
        process, with_children = self._watched[name]
        if not with_children:
            return [process]
        found_at, children = self._children.get(name, (0.0, []))
        if time.monotonic() - found_at > CHILDREN_REFRESH_S:
            try:
                children = process.children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self._children[name] = (time.monotonic(), children)
        return [process, *children]

    def _cpu_seconds(self) -> dict[str, float]:
        totals = {}
        with self._lock:
            for name in self._watched:
                total = 0.0
                for member in self._members(name):
                    try:
                        times = member.cpu_times()
                        total += times.user + times.system
                    except psutil.NoSuchProcess:
                        continue
                totals[name] = total
        return totals

    def _sample_rss(self) -> None:
        with self._lock:
            for name in self._watched:
                rss = 0
                for member in self._members(name):
                    try:
                        rss += member.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                mib = rss / BYTES_PER_MIB
                for phase in self._open_phases:
                    phase.peak_rss_mib[name] = max(phase.peak_rss_mib.get(name, 0.0), mib)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample_rss()

    def __enter__(self) -> ProcessMonitor:
        self._thread = threading.Thread(target=self._loop, name="process-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @contextmanager
    def phase(self) -> Iterator[PhaseUsage]:
        """Measure the block: CPU seconds per watched process, peak RSS, the machine's busy time."""
        usage = PhaseUsage()
        with self._lock:
            self._open_phases.append(usage)
        self._sample_rss()
        cpu_before, machine_before, started = self._cpu_seconds(), _machine_busy_s(), time.perf_counter()
        try:
            yield usage
        finally:
            usage.wall_s = time.perf_counter() - started
            usage.machine_busy_s = _machine_busy_s() - machine_before
            cpu_after = self._cpu_seconds()
            usage.cpu_s = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
            self._sample_rss()
            with self._lock:
                self._open_phases.remove(usage)


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (guest time is already inside user time on Linux)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
