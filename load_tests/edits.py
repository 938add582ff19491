"""Bench section ``edits``: each edit's latency beside the plain cutout, and the result's bytes per format.

Sequential requests through the gateway (concurrency 1, default variant, the parameters below), after one
warm-up request per endpoint and photo size; medians of ``repeats`` requests. Every answer must be a 200 whose
body decodes (the PNG headers are not enough for JPEG and WebP). The output bytes are those of the 12 MP photo.
"""

from __future__ import annotations

import io
import time
from statistics import median

import httpx
from PIL import Image

from contract.product import FORMATS, PRODUCT
from load_tests import report
from load_tests.traffic_mix import photo_jpeg

# endpoint -> query of its call here; the cutout is the baseline every edit builds on.
CALLS = {
    "cutout": {},
    "depth": {},
    "background": {"color": "1e90ff"},
    "bokeh": {"aperture": 6},
    "adjust": {"bg_saturation": -0.6, "bg_brightness": -0.2},
    "crop": {"aspect": "4:5"},
    "layers": {},
}
FORMAT_CALLS = ("cutout", "mask", "bokeh", "depth")
PHOTOS = ("1MP", "12MP")


def _post(client: httpx.Client, operation: str, photo: bytes, query: dict) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.post(PRODUCT.path(PRODUCT.operation(operation)), content=photo, params=query,
                           headers={"Content-Type": "image/jpeg"})
    elapsed_ms = (time.perf_counter() - started) * 1e3
    if response.status_code != 200:
        raise RuntimeError(f"{operation} {query}: {response.status_code} {response.text[:200]}")
    if response.headers["content-type"].startswith("image/"):
        Image.open(io.BytesIO(response.content)).load()
    return elapsed_ms, response


def latency_rows(client: httpx.Client, repeats: int) -> list[dict]:
    rows = []
    for size in PHOTOS:
        photo = photo_jpeg(size)
        baseline = None
        for operation, query in CALLS.items():
            _post(client, operation, photo, query)  # warm-up
            p50 = median(_post(client, operation, photo, query)[0] for _ in range(repeats))
            baseline = p50 if operation == "cutout" else baseline
            rows.append({"endpoint": f"{operation}?{'&'.join(f'{k}={v}' for k, v in query.items())}".rstrip("?"),
                         "photo": size, "p50_ms": p50, "ratio": p50 / baseline})
    return rows


def format_rows(client: httpx.Client) -> list[dict]:
    photo, rows = photo_jpeg("12MP"), []
    for operation in FORMAT_CALLS:
        transparent = PRODUCT.operation(operation).output.transparent
        for fmt in FORMATS:
            if transparent and fmt == "jpeg":
                continue
            for quality in ((90, 100) if fmt == "webp" else (90,)):
                elapsed_ms, response = _post(client, operation, photo, {"format": fmt, "quality": quality})
                rows.append({"endpoint": operation, "format": fmt, "quality": "" if fmt == "png" else quality,
                             "mib": len(response.content) / 2**20, "ms": elapsed_ms})
    return rows


def measure(measured: dict, port: int, key: str, repeats: int) -> report.Section:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers={"X-API-Key": key}) as client:
        latency, formats = latency_rows(client, repeats), format_rows(client)
    query = ", ".join(f"{op}: `{'&'.join(f'{k}={v}' for k, v in q.items()) or 'defaults'}`" for op, q in CALLS.items())
    return report.section("edits", "Edits and output formats", measured, [
        {"heading": "## Edits: one request at a time, through the gateway, beside the plain cutout",
         "text": [f"Default matte (portrait), concurrency 1, median of {repeats} after a warm-up; {query}. "
                  "ratio = p50 / the cutout's p50 at the same photo size."],
         "columns": [["endpoint", "`{endpoint}`"], ["photo", "{photo} JPEG"], ["p50 ms", "{p50_ms:.0f}"],
                     ["ratio to cutout", "{ratio:.2f}"]], "rows": latency},
        {"heading": "## Output bytes per format, 12 MP photo",
         "text": ["One request each (the time includes the models and the encode; PNG is lossless, WebP 100 is "
                  "lossless WebP, JPEG is for opaque results only)."],
         "columns": [["endpoint", "`{endpoint}`"], ["format", "{format}"], ["quality", ["{quality}", "-"]],
                     ["MiB", "{mib:.2f}"], ["request ms", "{ms:.0f}"]], "rows": formats},
    ])
