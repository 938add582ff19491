"""Schemathesis against the live gateway: no 5xx and no response that breaks the OpenAPI document."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from schemathesis.config._warnings import DEFAULT_DISPLAYED_WARNINGS
from schemathesis.core.warnings import SchemathesisWarning

from tests.e2e.conftest import BOOTSTRAP_KEY, RunningGateway

pytestmark = pytest.mark.e2e


# Schemathesis' default warnings but validation_mismatch: the edits' alternatives (exactly one of color, blur
# or a background part; focus_x with focus_y; aspect, or width with height) cannot be said of query parameters
# in OpenAPI, so most random combinations of them are rightly refused with a 400 that names the alternatives.
WARNINGS = [w.value for w in DEFAULT_DISPLAYED_WARNINGS if w is not SchemathesisWarning.VALIDATION_MISMATCH]


def test_schemathesis_finds_no_server_error_or_schema_violation(gateway: RunningGateway, tmp_path: Path) -> None:
    # positive_data_acceptance is left out: the schema can say "binary body", not "a decodable photo",
    # so schema-valid random bytes are rightly refused with 415/422.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{gateway.url}/openapi.json",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--header", f"Authorization: Bearer {BOOTSTRAP_KEY}",
         "--max-examples", "40", "--seed", "20261121", "--generation-database", "none",
         "--workers", "2", "--no-color", "--output-sanitize", "true", "--warnings", ",".join(WARNINGS),
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-3000:]
    generated = int(re.search(r"(\d+) generated", result.stdout).group(1))
    assert generated >= 200, result.stdout[-3000:]  # every operation was really exercised
    assert BOOTSTRAP_KEY not in result.stdout
