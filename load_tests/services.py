"""The processes a benchmark measures, started on free ports, watched (CPU, peak RSS) and always stopped.

Triton, the gateway (its own SQLite ledger, a bootstrap key), the naive baseline and the whole stack as
``make run`` starts it. Triton is watched with its children (the python-backend stubs); a tree's RSS is summed,
an upper bound. CPU is exact per phase; the machine's other load is its busy time minus the watched processes'.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from stack.gateway import start_gateway, wait_until_ok
from stack.ports import free_port
from stack.processes import stop_process
from stack.triton import TritonPorts, TritonServer

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"
KEPT = ".bench-keep"
CHILDREN_REFRESH_S = 2.0  # finding children scans /proc (~4 ms holding the load generator's GIL): not per sample


HttpService = namedtuple("HttpService", "port pid api_key", defaults=[""])


@contextmanager
def running_triton(repository: Path = MODEL_REPOSITORY) -> Iterator[TritonServer]:
    log = Path(tempfile.mkdtemp(prefix="imageserve-bench-")) / "triton.log"
    with TritonServer(repository, TritonPorts(free_port(), free_port(), free_port()), log_path=log) as server:
        yield server


@contextmanager
def _serving(process: subprocess.Popen, port: int, ready_path: str, key: str = "") -> Iterator[HttpService]:
    try:
        wait_until_ok(f"http://127.0.0.1:{port}{ready_path}", process, timeout_s=60)
        yield HttpService(port, process.pid, key)
    finally:
        stop_process(process)


@contextmanager
def running_gateway(triton_grpc_port: int) -> Iterator[HttpService]:
    """The gateway in front of Triton, with a fresh SQLite ledger and an admin key with ample credits."""
    port, key = free_port(), secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="imageserve-bench-gateway-") as tmp:
        env = {"GATEWAY_DATABASE_URL": f"sqlite:///{Path(tmp) / 'gateway.db'}", "GATEWAY_BOOTSTRAP_API_KEY": key}
        # Its access log (a line per request) goes to a file, as a deployment's would, not to the bench's console.
        process = start_gateway("127.0.0.1", port, triton_grpc_port, extra_env=env, log_path=Path(tmp) / "gateway.log")
        with _serving(process, port, "/readyz", key) as s:
            yield s


@contextmanager
def running_naive_app() -> Iterator[HttpService]:
    """The no-Triton baseline: one uvicorn process, inline decode + ONNX Runtime + PNG per request."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "load_tests.naive_app:create_app", "--factory",
                                "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level",
                                "warning"], cwd=REPO)
    with _serving(process, port, "/healthz") as service:
        yield service


def start_command() -> list[str]:
    """``make -s run`` when make has nothing to rebuild first (a reinstall is not a start), else what it runs."""
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, capture_output=True).returncode == 0
    return ["make", "-s", "run"] if up_to_date else [sys.executable, "-m", "stack"]


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
            stop_process(process, signal.SIGINT, 40, group=True)


@contextmanager
def models_set_aside(repository: Path = MODEL_REPOSITORY) -> Iterator[None]:
    """No converted model in ``repository`` for the block; afterwards the originals are back unless rebuilt."""
    kept = list(repository.glob("*/1/model.onnx*"))
    for onnx in kept:
        onnx.rename(onnx.with_name(onnx.name + KEPT))
    try:
        yield
    finally:
        for original in kept:
            aside = original.with_name(original.name + KEPT)
            if original.exists():
                aside.unlink()
            else:
                aside.rename(original)


@dataclass
class Phase:
    """What each watched process used during one phase of load."""

    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    machine_busy_s: float = 0.0


def _machine_busy_s() -> float:
    times = psutil.cpu_times()  # guest time is already inside user time on Linux
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


class ProcessMonitor:
    """Watch named processes (optionally with children); measure phases; sample peak RSS in a thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s, self.phases, self._open = interval_s, [], []
        self._watched: dict[str, tuple[psutil.Process, bool]] = {}
        self._children: dict[str, tuple[float, list[psutil.Process]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-monitor", daemon=True)

    def watch(self, name: str, pid: int, with_children: bool) -> None:
        self._watched = {**self._watched, name: (psutil.Process(pid), with_children)}  # a new dict: no lock needed

    def _totals(self, read) -> dict[str, float]:  # noqa: ANN001
        totals = {}
        for name, (process, with_children) in self._watched.items():
            found_at, children = self._children.get(name, (0.0, []))
            if with_children and time.monotonic() - found_at > CHILDREN_REFRESH_S:
                try:
                    children = process.children(recursive=True)
                except psutil.NoSuchProcess:
                    children = []
                self._children[name] = (time.monotonic(), children)
            totals[name] = 0.0
            for member in [process, *(children if with_children else [])]:
                try:
                    totals[name] += read(member)
                except psutil.NoSuchProcess:
                    continue
        return totals

    def _sample_rss(self) -> None:
        for name, rss in self._totals(lambda p: p.memory_info().rss).items():
            for phase in list(self._open):
                phase.peak_rss_mib[name] = max(phase.peak_rss_mib.get(name, 0.0), rss / 2**20)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample_rss()

    def __enter__(self) -> ProcessMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self) -> Iterator[Phase]:
        """Measure the block: CPU seconds per watched process, peak RSS, the machine's busy time."""
        usage, cpu_s = Phase(), (lambda: self._totals(lambda p: sum(p.cpu_times()[:2])))
        self._open.append(usage)
        self._sample_rss()
        cpu, machine, started = cpu_s(), _machine_busy_s(), time.perf_counter()
        try:
            yield usage
        finally:
            usage.wall_s, usage.machine_busy_s = time.perf_counter() - started, _machine_busy_s() - machine
            usage.cpu_s = {name: seconds - cpu.get(name, 0.0) for name, seconds in cpu_s().items()}
            self._sample_rss()
            self._open.remove(usage)
            self.phases.append(usage)
