"""Start the gateway as a uvicorn process and wait for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def start_gateway(host: str, port: int, triton_grpc_port: int, extra_env: dict[str, str] | None = None,
                  log_path: Path | None = None) -> subprocess.Popen:
    """``python -m gateway`` in front of Triton's gRPC port; its output goes to ``log_path`` (else ours)."""
    env = {**os.environ, "GATEWAY_TRITON_GRPC_URL": f"127.0.0.1:{triton_grpc_port}",
           "GATEWAY_HOST": host, "GATEWAY_PORT": str(port), **(extra_env or {})}
    if log_path is None:
        return subprocess.Popen([sys.executable, "-m", "gateway"], env=env)
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ok(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")
