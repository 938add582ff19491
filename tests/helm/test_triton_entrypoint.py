"""docker/triton-entrypoint.sh: a crashed server's shared-memory regions (they hold photos) are removed
before Triton starts, new files are private to its user, and the arguments reach tritonserver."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from .chart import tool

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "triton-entrypoint.sh"
FAKE_SERVER = """#!/bin/sh
umask > "$OUT/umask"
echo "$@" > "$OUT/args"
touch "$OUT/created"
"""


def test_entrypoint_removes_stale_regions_sets_umask_and_execs_tritonserver(tmp_path: Path) -> None:
    shm, bin_dir, out = tmp_path / "shm", tmp_path / "bin", tmp_path / "out"
    for directory in (shm, bin_dir, out):
        directory.mkdir()
    stale = shm / "triton_python_backend_shm_region_4b2e"
    stale.write_bytes(b"marker photo bytes")
    other = shm / "PostgreSQL.1234"
    other.write_bytes(b"not ours")
    server = bin_dir / "tritonserver"
    server.write_text(FAKE_SERVER)
    server.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SHM_DIR": str(shm), "OUT": str(out)}
    result = subprocess.run(["sh", str(SCRIPT), "--model-repository=/models", "--strict-readiness=true"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and other.exists()
    assert (out / "umask").read_text().strip() == "0077"
    assert (out / "args").read_text().split() == ["--model-repository=/models", "--strict-readiness=true"]
    assert stat.S_IMODE((out / "created").stat().st_mode) == 0o600


def test_entrypoint_is_shellcheck_clean() -> None:
    result = subprocess.run([str(tool("shellcheck")), str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
