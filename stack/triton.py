"""Start, await and stop the real ``tritonserver`` binary shipped in the nvidia-pytriton wheel."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stack.processes import stop_process

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
REGIONS = "/dev/shm/triton_python_backend_shm_region_*"
# What the gateway never needs, refused without ADMIN_HEADER: registering shared memory (the 2025 remote-code
# chain went through it), loading and unloading models, statistics, traces, log settings, model configs.
# Health, metadata and inference stay open.
RESTRICTED = "shared-memory,model-config,model-repository,statistics,trace,logging"
ADMIN_HEADER = "admin-key"
# The python backend (boost.interprocess) creates its regions 0644 whatever the umask; they hold photos.
PRIVATE = 0o600


class TritonStartError(RuntimeError):
    """Triton did not become ready; the message carries the tail of its log."""


def triton_home() -> Path:
    import pytriton

    return Path(pytriton.__file__).parent / "tritonserver"


def install_python_stub() -> Path:
    """Put the python-backend stub where the backend looks for it (the wheel does not)."""
    home = triton_home()
    stub = home / "backends" / "python" / "triton_python_backend_stub"
    source = home / "python_backend_stubs" / PYTHON_VERSION / "triton_python_backend_stub"
    if not stub.exists():
        if not source.exists():
            raise TritonStartError(f"no python-backend stub for Python {PYTHON_VERSION} in {source.parent.parent}")
        shutil.copy2(source, stub)
    return stub


@dataclass(frozen=True)
class TritonPorts:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def server_environment() -> dict[str, str]:
    """The stub runs ``python3`` from PATH in isolated mode: make it this environment's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def server_command(repository: Path, ports: TritonPorts, admin_key: str, host: str = "127.0.0.1") -> list[str]:
    home = triton_home()
    restricted = f"{RESTRICTED}:{ADMIN_HEADER}={admin_key}"
    return [
        str(home / "bin" / "tritonserver"),
        f"--model-repository={repository.resolve()}",
        f"--backend-directory={home / 'backends'}",
        f"--cache-directory={home / 'caches'}",
        f"--http-address={host}", f"--http-port={ports.http}",
        f"--grpc-address={host}", f"--grpc-port={ports.grpc}",
        f"--metrics-address={host}", f"--metrics-port={ports.metrics}",
        "--allow-gpu-metrics=false",
        # Ready once start-up loading is over, even if a model failed: the others
        # keep serving and the gateway's /readyz names what is missing.
        "--strict-readiness=false",
        "--exit-on-error=false",
        "--log-verbose=0",
        f"--grpc-restricted-protocol={restricted}",
        f"--http-restricted-api={restricted}",
    ]


class TritonServer:
    """One tritonserver process; ``with TritonServer(...) as server:`` starts and stops it."""

    def __init__(self, repository: Path, ports: TritonPorts = TritonPorts(), log_path: Path | None = None) -> None:
        self.repository = repository
        self.ports = ports
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_handle = None
        self.admin_key = secrets.token_urlsafe(24)  # for the restricted protocols: tests and tools only
        self._stubs_at_ready: dict[int, str] = {}

    @property
    def admin_headers(self) -> dict[str, str]:
        """gRPC metadata that opens the restricted protocols (Triton prefixes the header's name on gRPC)."""
        return {f"triton-grpc-protocol-{ADMIN_HEADER}": self.admin_key}

    @property
    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}/v2/health/ready"

    def start(self) -> None:
        install_python_stub()
        remove_stale_shared_memory()  # a crashed server's regions hold recent photos
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self.log_path.open("ab")
        self.process = subprocess.Popen(
            server_command(self.repository, self.ports, self.admin_key),
            env=server_environment(),
            stdout=self._log_handle or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us; we stop Triton in order
        )

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Poll readiness until ``timeout_s``; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process is not None and self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with code {self.process.returncode}{self._log_tail()}")
            if self.is_ready():
                restrict_shared_memory()  # every step has made its region by now
                self._stubs_at_ready = self.stubs()
                return time.monotonic() - started
            time.sleep(0.1)
        raise TritonStartError(f"tritonserver not ready after {timeout_s:.0f} s{self._log_tail()}")

    def stubs(self) -> dict[int, str]:
        """The server's python-backend stub processes that are alive: pid -> model file."""
        stubs = {}
        for pid in _children(self.process.pid) if self.process is not None else []:
            argv = _argv(pid)
            if argv and argv[0].endswith("/triton_python_backend_stub") and _alive(pid):
                stubs[pid] = argv[1] if len(argv) > 1 else "?"
        return stubs

    def regions(self) -> set[str]:
        """The shared-memory regions the server and its stubs map."""
        if self.process is None:
            return set()
        mapped = set()
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                maps = Path(f"/proc/{pid}/maps").read_text(errors="ignore")
            except OSError:
                continue
            mapped.update(path for path in glob.glob(REGIONS) if path in maps)
        return mapped

    def dead_stubs(self) -> list[str]:
        """Model files whose stub, alive when the server became ready, has died since. Triton 2.51 neither
        restarts such a stub nor marks its model unready: the instance fails every request it gets."""
        alive = self.stubs()
        return sorted(model for pid, model in self._stubs_at_ready.items() if pid not in alive)

    def why_broken(self) -> str | None:
        """Why a started server needs a restart (it exited, or lost a stub), or None when it is sound."""
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return f"tritonserver exited with code {self.process.returncode}"
        if dead := self.dead_stubs():
            return f"the python-backend stub of {', '.join(dead)} died"
        return None

    def restart(self) -> None:
        self.stop(timeout_s=5.0)  # a model whose stub died cannot unload cleanly: no long wait for it
        self.start()
        self.wait_ready()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to it after ``timeout_s``. The stub processes catch
        SIGTERM and are stopped by the server as it unloads the models, the same clean shutdown as a SIGTERM
        to the server alone."""
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout_s, group=True)
            remove_stale_shared_memory()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-30:]
        return "; last log lines:\n" + "\n".join(lines)

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def restrict_shared_memory() -> None:
    """Make the regions of this user (the server's, once it is ready) readable by their owner only."""
    for path in glob.glob(REGIONS):
        try:
            if os.stat(path).st_uid == os.getuid():
                os.chmod(path, PRIVATE)
        except FileNotFoundError:
            continue


def remove_stale_shared_memory() -> None:
    """A hard-killed server leaves its python-backend regions (recent inputs and outputs: photos) in
    /dev/shm; remove ours that no live process maps. Run before every start and after every stop."""
    for path in glob.glob(REGIONS):
        try:
            owner = os.stat(path).st_uid
        except FileNotFoundError:
            continue
        if owner == os.getuid() and not _in_use(path):
            Path(path).unlink(missing_ok=True)


def _in_use(path: str) -> bool:
    """True if any live process maps ``path`` (checked through /proc)."""
    for maps in glob.glob("/proc/[0-9]*/maps"):
        try:
            if path in Path(maps).read_text(errors="ignore"):
                return True
        except OSError:
            continue
    return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}
