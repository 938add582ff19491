"""The locust scenarios against the live gateway: every endpoint served and checked, SLO verdicts enforced."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from load_tests.operations import OPERATIONS
from load_tests.traffic_mix import OPERATION_WEIGHTS
from tests.conftest import REPO
from tests.e2e.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e

IMPOSSIBLE_SLO = """
[total]
max_error_rate = 0.0
p95_ms = 1
p99_ms = 1
"""
LENIENT_SLO = "\n".join(
    ["[total]", "max_error_rate = 0.0", "p95_ms = 60000", "p99_ms = 60000"]
    + [f'[endpoints."{OPERATIONS[name].http_path}"]\nmax_error_rate = 0.0\np95_ms = 60000\np99_ms = 60000'
       for name in OPERATION_WEIGHTS]
)


def locust_run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGESERVE_API_KEY": BOOTSTRAP_KEY}
    return subprocess.run([sys.executable, "-m", "load_tests.locust_run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_locust_hits_every_endpoint_without_failures_and_an_impossible_slo_fails(gateway_url: str,
                                                                               tmp_path: Path) -> None:
    impossible, lenient = tmp_path / "impossible.toml", tmp_path / "lenient.toml"
    impossible.write_text(IMPOSSIBLE_SLO)
    lenient.write_text(LENIENT_SLO)
    run = locust_run("run", "--host", gateway_url, "--users", "4", "--spawn-rate", "4", "--run-time", "15s",
                     "--photo-sizes", "0.3MP", "--slo", str(impossible), "--out", str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "SLO missed: total: p95" in run.stdout
    stats_csv = tmp_path / "locust_stats.csv"
    with stats_csv.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    for name in OPERATION_WEIGHTS:
        row = rows[OPERATIONS[name].http_path]
        assert int(row["Request Count"]) > 0, name
        assert int(row["Failure Count"]) == 0, name
    assert (tmp_path / "locust.html").stat().st_size > 0
    check = locust_run("check", str(stats_csv), "--slo", str(lenient))
    assert check.returncode == 0, check.stdout + check.stderr
