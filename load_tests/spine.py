"""Numbers of the serving spine, measured end to end on this machine.

``python -m load_tests.spine`` measures, and writes ``load_tests/results/spine.md``:
1. time from starting the stack to ready: first time (empty download cache,
   models converted) and warm (everything built);
2. latency per endpoint at batch 1 (sequential requests through the gateway)
   for a 1 MP and a 12 MP JPEG;
3. decode-to-model-input time for a 12 MP JPEG, full decode + resize versus
   the reduced-size (DCT-scaled) decode.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

from imaging.decode import Photo
from imaging.tensors import model_input
from load_tests.photos import machine_description, photo_jpeg
from load_tests.stats import percentile
from stack.gateway import stop_process, wait_until_ok

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "load_tests" / "results" / "spine.md"
ENDPOINTS = ["/v1/depth", "/v1/mask?model=fast", "/v1/mask?model=quality", "/v1/cutout?model=fast",
             "/v1/cutout?model=quality"]


API_KEY = secrets.token_urlsafe(32)
BENCH_DB = Path(tempfile.gettempdir()) / "imageserve-bench-gateway.db"


def start_stack(env: dict[str, str], port: int) -> tuple[subprocess.Popen, float]:
    env = {**env, "GATEWAY_BOOTSTRAP_API_KEY": API_KEY, "GATEWAY_DATABASE_URL": f"sqlite:///{BENCH_DB}"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "stack", "--gateway-port", str(port), "--http-port", "18100",
         "--grpc-port", "18101", "--metrics-port", "18102", "--log", str(REPO / "build" / "bench-triton.log")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until_ok(f"http://127.0.0.1:{port}/readyz", process, timeout_s=600)
    return process, time.monotonic() - started


def stop_stack(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        stop_process(process)


def measure_startup(port: int) -> dict[str, float]:
    """First start: fresh download cache and no converted models; then a warm start."""
    times = {}
    moved = []
    for onnx in (REPO / "model_repository").glob("*/1/model.onnx*"):
        target = onnx.with_name(onnx.name + ".bench-keep")
        onnx.rename(target)
        moved.append((target, onnx))
    cache = tempfile.mkdtemp(prefix="imageserve-bench-cache-")
    try:
        process, times["first"] = start_stack({**os.environ, "IMAGESERVE_CACHE": cache}, port)
        stop_stack(process)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        for kept, original in moved:
            if not original.exists():
                kept.rename(original)
            else:
                kept.unlink()
    warm = []
    for _ in range(3):
        process, seconds = start_stack(dict(os.environ), port)
        stop_stack(process)
        warm.append(seconds)
    times["warm"] = median(warm)
    return times


def post(url: str, data: bytes) -> float:
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {API_KEY}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - started


def measure_latency(port: int, repeats: int) -> dict[tuple[str, str], list[float]]:
    process, _ = start_stack(dict(os.environ), port)
    results = {}
    try:
        for size in ("1MP", "12MP"):
            data = photo_jpeg(size)
            for endpoint in ENDPOINTS:
                url = f"http://127.0.0.1:{port}{endpoint}"
                post(url, data)  # first request after start is reported by the startup figures
                results[(endpoint, size)] = [post(url, data) for _ in range(repeats)]
    finally:
        stop_stack(process)
    return results


def measure_decode(repeats: int) -> dict[str, list[float]]:
    data = photo_jpeg("12MP")
    timings: dict[str, list[float]] = {"full decode + resize": [], "reduced-size decode + resize": []}
    for _ in range(repeats):
        for label, min_size in (("full decode + resize", None), ("reduced-size decode + resize", (320, 320))):
            started = time.perf_counter()
            rgb = Photo(data, max_pixels=40_000_000).decode(min_size=min_size)
            model_input(rgb, 320, 320, "imagenet")
            timings[label].append(time.perf_counter() - started)
    return timings


def report(startup: dict[str, float] | None, latency, decode) -> str:
    lines = [
        "# Spine numbers", "",
        f"Machine: {machine_description()}.", "",
        "Command: `.venv/bin/python -m load_tests.spine` (medians of repeated runs; 2-core figures are noisy, ±20%).", "",
    ]
    if startup:
        lines += ["## Start to ready (gateway /readyz answers 200)", "", "| start | seconds |", "|---|---|",
                  f"| first (download + convert models, start Triton and gateway) | {startup['first']:.1f} |",
                  f"| warm (models built; median of 3) | {startup['warm']:.1f} |", ""]
    lines += ["## Latency per endpoint, batch 1, sequential, through the gateway", "",
              "| endpoint | photo | p50 ms | p95 ms |", "|---|---|---|---|"]
    for (endpoint, size), values in latency.items():
        lines.append(f"| `{endpoint}` | {size} JPEG | {percentile(values, 50) * 1e3:.0f} | {percentile(values, 95) * 1e3:.0f} |")
    full = median(decode["full decode + resize"])
    reduced = median(decode["reduced-size decode + resize"])
    lines += ["", "## 12 MP JPEG (4000x3000) to a 320x320 model input", "", "| path | median ms |", "|---|---|",
              f"| full decode + resize | {full * 1e3:.0f} |",
              f"| reduced-size decode (libjpeg DCT scaling) + resize | {reduced * 1e3:.0f} |",
              f"| ratio reduced / full | {reduced / full:.2f} |", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--port", type=int, default=18180)
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    startup = None if args.skip_startup else measure_startup(args.port)
    decode = measure_decode(args.repeats)
    latency = measure_latency(args.port, args.repeats)
    text = report(startup, latency, decode)
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
