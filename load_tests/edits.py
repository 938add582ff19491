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
import numpy as np
import skimage.data
from PIL import Image

from contract.product import ERASE_MASK, FACE_LAYER_NAMES, FORMATS, PRODUCT, STYLE_PART
from load_tests import report
from load_tests.traffic_mix import SIZES, photo_jpeg

# endpoint -> query of its call here; the cutout is the baseline every edit builds on.
CALLS = {
    "cutout": {},
    "depth": {},
    "background": {"color": "1e90ff"},
    "bokeh": {"aperture": 6},
    "adjust": {"bg_saturation": -0.6, "bg_brightness": -0.2},
    "crop": {"aspect": "4:5"},
    "style": {"style": "mosaic"},
    "layers": {},
}
# The operations on other inputs, at 1 MP of result: (label, operation, photo size, query, the multipart part
# sent beside the photo: erase's mask, or a style picture). Upscaling makes 1 MP from a quarter of it (scale=2):
# fast from 0.25 MP, and quality, which takes ~150 s per input megapixel on 2 CPU cores, from 0.06 MP (a quarter
# of the result) to stay within the request budget.
PIXEL_CALLS = (
    ("upscale?model=fast&scale=2", "upscale", (576, 432), {"model": "fast", "scale": 2}, None),
    ("upscale?model=quality&scale=2", "upscale", (288, 216), {"model": "quality", "scale": 2}, None),
    ("erase (a tenth of the photo)", "erase", SIZES["1MP"], {}, ERASE_MASK.name),
    (f"style with a {STYLE_PART.name} (600x400)", "style", SIZES["1MP"], {}, STYLE_PART.name),
)
# Faces at 1 MP: the portrait mask of the person (the baseline: it runs the faces step), the subject mask without
# it, the layers with every face part, the automatic choice, and select at a tap (on the astronaut's suit: the
# matte; on the wall: the classical region).
FACE_CALLS = (
    ("mask?model=portrait&layer=person", "mask", {"model": "portrait", "layer": "person"}),
    ("mask?model=portrait (no faces step)", "mask", {"model": "portrait"}),
    ("mask (model=auto: faces, then portrait)", "mask", {}),
    ("layers?include=person,<every face part>,faces", "layers",
     {"include": ",".join(("person", *FACE_LAYER_NAMES, "faces"))}),
    ("select at a tap on the person", "select", {"x": 225, "y": 557}),
    ("select at a tap on the wall", "select", {"x": 765, "y": 152}),
)
FORMAT_CALLS = ("cutout", "mask", "bokeh", "depth")
PHOTOS = ("1MP", "12MP")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _post(client: httpx.Client, operation: str, photo: bytes, query: dict,
          part: tuple[str, bytes] | None = None) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    path = PRODUCT.path(PRODUCT.operation(operation))
    if part is None:
        response = client.post(path, content=photo, params=query, headers={"Content-Type": "image/jpeg"})
    else:
        name, data = part
        response = client.post(path, params=query, files={"image": ("photo.jpg", photo, "image/jpeg"),
                                                          name: (f"{name}.png", data, "image/png")})
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


def pixel_rows(client: httpx.Client, repeats: int) -> list[dict]:
    rows = []
    portrait = Image.open(io.BytesIO(photo_jpeg("1MP")))
    for label, operation, size, query, part_name in PIXEL_CALLS:
        buffer = io.BytesIO()
        portrait.resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=90)
        part = None
        if part_name == ERASE_MASK.name:  # a centred box of a tenth of the photo: the astronaut's chest and arm
            box = np.zeros(size[::-1], np.uint8)
            h, w = size[1] // 3, size[0] * 3 // 10
            box[size[1] // 2:size[1] // 2 + h, (size[0] - w) // 2:(size[0] + w) // 2] = 255
            part = (part_name, _png(Image.fromarray(box)))
        elif part_name == STYLE_PART.name:  # the coffee photo's colours and texture
            part = (part_name, _png(Image.fromarray(skimage.data.coffee())))
        _post(client, operation, buffer.getvalue(), query, part)  # warm-up
        timed = [_post(client, operation, buffer.getvalue(), query, part) for _ in range(repeats)]
        out = Image.open(io.BytesIO(timed[-1][1].content))
        rows.append({"endpoint": label, "photo": f"{size[0]}x{size[1]}", "result": f"{out.width}x{out.height}",
                     "p50_ms": median(ms for ms, _ in timed)})
    return rows


def face_rows(client: httpx.Client, repeats: int) -> list[dict]:
    photo, rows, baseline = photo_jpeg("1MP"), [], None
    for label, operation, query in FACE_CALLS:
        _post(client, operation, photo, query)  # warm-up
        timed = [_post(client, operation, photo, query) for _ in range(repeats)]
        p50 = median(ms for ms, _ in timed)
        baseline = baseline or p50
        headers = timed[-1][1].headers
        rows.append({"endpoint": label, "p50_ms": p50, "extra_ms": p50 - baseline,
                     "answer": ", ".join(f"{name}: {headers[name]}" for name in ("X-Subject", "X-Faces", "X-Selected")
                                         if name in headers)})
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
        latency, pixels, formats = latency_rows(client, repeats), pixel_rows(client, 3), format_rows(client)
        faces = face_rows(client, repeats)
    query = ", ".join(f"{op}: `{'&'.join(f'{k}={v}' for k, v in q.items()) or 'defaults'}`" for op, q in CALLS.items())
    return report.section("edits", "Edits and output formats", measured, [
        {"heading": "## Edits: one request at a time, through the gateway, beside the plain cutout",
         "text": [f"Default matte (auto: portrait for the astronaut), concurrency 1, median of {repeats} after a "
                  f"warm-up; {query}. "
                  "ratio = p50 / the cutout's p50 at the same photo size."],
         "columns": [["endpoint", "`{endpoint}`"], ["photo", "{photo} JPEG"], ["p50 ms", "{p50_ms:.0f}"],
                     ["ratio to cutout", "{ratio:.2f}"]], "rows": latency},
        {"heading": "## Upscale, erase and the style of a picture, about 1 MP of result",
         "text": ["Concurrency 1, median of 3 after a warm-up (upscale: default format PNG; erase and style: a "
                  "multipart photo with its mask or style picture)."],
         "columns": [["endpoint", "`{endpoint}`"], ["photo", "{photo}"], ["result", "{result}"],
                     ["p50 ms", "{p50_ms:.0f}"]], "rows": pixels},
        {"heading": "## Faces, layers and select, 1 MP photo",
         "text": [f"Concurrency 1, median of {repeats} after a warm-up. extra = p50 - the first row's (the "
                  "portrait mask of the person, which runs the faces step): the faces step's cost (the row without "
                  "it), or the layers' or the selection's own work; differences of a few tens of ms are noise."],
         "columns": [["endpoint", "`{endpoint}`"], ["p50 ms", "{p50_ms:.0f}"], ["extra ms", "{extra_ms:+.0f}"],
                     ["answer", "{answer}"]], "rows": faces},
        {"heading": "## Output bytes per format, 12 MP photo",
         "text": ["One request each (the time includes the models and the encode; PNG is lossless, WebP 100 is "
                  "lossless WebP, JPEG is for opaque results only)."],
         "columns": [["endpoint", "`{endpoint}`"], ["format", "{format}"], ["quality", ["{quality}", "-"]],
                     ["MiB", "{mib:.2f}"], ["request ms", "{ms:.0f}"]], "rows": formats},
    ])
