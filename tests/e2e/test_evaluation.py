"""``python -m evaluation --size small`` against the live gateway: a row per declared variant, plausible numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contract.product import PRODUCT
from tests.conftest import REPO
from tests.e2e.conftest import BOOTSTRAP_KEY, RunningGateway

pytestmark = pytest.mark.e2e


def test_evaluation_command_measures_every_variant(gateway: RunningGateway, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "--url", gateway.url, "--key", BOOTSTRAP_KEY, "--size", "small",
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    document, raw = out.read_text(), out.with_suffix(".json").read_text()
    assert BOOTSTRAP_KEY not in document and BOOTSTRAP_KEY not in raw
    results = json.loads(raw)
    mask = PRODUCT.operation("mask")
    assert list(results["variants"]) == list(mask.variant_names)
    assert results["set"]["count"] == 4 and results["machine"]["nproc"] >= 1 and results["git"]["commit"]
    for name, variant in results["variants"].items():
        summary = variant["summary"]
        assert f"| `{name}`" in document
        assert variant["errors"] == [] and summary["scored"] == 4 and len(variant["composites"]) == 4
        assert 0.25 < summary["iou_mean"] <= 1.0 and 0.0 <= summary["iou_worst"] <= summary["iou_mean"], name
        assert 0.0 < summary["alpha_error_mean"] < 0.3, name
        assert 0.0 <= summary["band_error_mean"] < 255 and summary["band_baseline_mean"] > 0, name
        assert 0 < summary["mask_ms"]["median"] <= summary["mask_ms"]["p95"] < 30_000, name
        assert 0 < summary["cutout_ms"]["median"] <= summary["cutout_ms"]["p95"] < 30_000, name
        assert all(h.startswith("x-matte") for hs in variant["headers"].values() for h in hs)
    assert results["variants"][mask.default_variant]["default"]
    assert results["variants"][mask.default_variant]["summary"]["iou_mean"] > 0.5
