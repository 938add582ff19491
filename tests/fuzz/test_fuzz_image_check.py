"""A short coverage-guided fuzz of the header-only image check, in a subprocess.

Longer runs (minutes) are a manual step, see docs/robustness.md; any crash
they find becomes a regression test in tests/unit/test_image_check.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fuzz.seeds import write_seeds

HARNESS = Path(__file__).with_name("fuzz_image_check.py")
FUZZ_SECONDS = 12


def run_harness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HARNESS), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 60, env={**os.environ, **(env or {})})


def test_short_fuzz_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_seeds(corpus)
    result = run_harness(str(corpus), f"-max_total_time={FUZZ_SECONDS}", "-timeout=5", "-max_len=4096",
                         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", cwd=tmp_path)
    artifacts = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert result.returncode == 0 and not artifacts, f"{artifacts}\n{result.stderr[-3000:]}"
    runs = re.search(r"stat::number_of_executed_units:\s+(\d+)", result.stderr)
    assert runs and int(runs.group(1)) > 10_000, result.stderr[-2000:]  # it really fuzzed


def test_the_harness_reports_a_crash(tmp_path: Path) -> None:
    """With a planted bug the same harness fails and names the exception: a crash cannot go unnoticed."""
    planted = tmp_path / "planted"
    planted.write_bytes(b"CRASH" + bytes(16))
    result = run_harness(str(planted), f"-artifact_prefix={tmp_path}/", cwd=tmp_path,
                         env={"IMAGESERVE_FUZZ_SELFTEST": "1"})
    assert result.returncode != 0
    assert "planted crash" in result.stdout + result.stderr
