"""Every metric the Helm chart's alerts, dashboards and autoscaler read is really exported.

Scrapes the live gateway and the live Triton after real requests. GPU metrics
(``nv_gpu_*``) exist only on GPU nodes and are left out here.
"""

import httpx
import pytest

from stack.triton import TritonServer
from tests.conftest import jpeg_bytes
from tests.helm.test_monitoring import exported_metrics, recorded_names, used_metric_names

pytestmark = pytest.mark.e2e
GPU_ONLY_PREFIX = "nv_gpu_"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


def scraped_names(text: str) -> set[str]:
    """Sample names in an exposition, including declared series that have no sample yet."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(f"{base}{suffix}" for suffix in SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def test_chart_reads_only_metrics_the_live_stack_exports(http, triton: TritonServer, astronaut) -> None:
    response = http.post("/v1/depth", content=jpeg_bytes(astronaut), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200
    live = scraped_names(http.get("/metrics").text)
    live |= scraped_names(httpx.get(f"http://127.0.0.1:{triton.ports.metrics}/metrics", timeout=10).text)

    used = {name for name in used_metric_names() if not name.startswith(GPU_ONLY_PREFIX)} - recorded_names()
    assert used, "the chart reads no metrics: the extractor is broken"
    assert sorted(used - live) == [], "the chart reads metrics the running stack does not export"
    listed = {name for name in exported_metrics() if not name.startswith(GPU_ONLY_PREFIX)}
    assert sorted(listed - live) == [], "tests/helm/exported_metrics.txt lists metrics nobody exports"
