"""``python -m evaluation.matte_layouts``: how MODNet sees the photo, measured: squashed to the served 512 x 512,
aspect kept with the short side at 256-512 px (multiples of 32, MODNet's own inference script), or letterboxed
into a square.

No Triton: the catalog's MODNet source file (its H and W are free) in ONNX Runtime, on the tuning set
(``evaluation.refinement.tuning_set``: the layout is chosen there) and on the evaluation composites (reported,
not tuned on). Each matte is refined to the composite's size as served (``imaging.matte.refine``) and scored
at 8 bits: mean IoU at 0.5, per person, worst IoU, mean absolute alpha error, and model milliseconds per
composite (2 threads). Prints a markdown table (imaging/REFINEMENT.md, section 4).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import cv2
import numpy as np
import onnxruntime as ort

from converters.catalog import get_source
from converters.fetch import fetch_source
from evaluation import composites as comp
from evaluation.metrics import iou
from evaluation.refinement import tuning_set
from imaging.matte import refine
from imaging.outputs import matte_to_uint8

MODEL = "matte_portrait"
SERVED_SIDE = 512
THREADS = 2

Layout = Callable[[np.ndarray], tuple[np.ndarray, tuple[slice, slice]]]  # photo -> (network input, matte crop)


def squash(rgb: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    return cv2.resize(rgb, (SERVED_SIDE, SERVED_SIDE), interpolation=cv2.INTER_AREA), (slice(None), slice(None))


def aspect(short: int) -> Layout:
    def layout(rgb: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
        height, width = rgb.shape[:2]
        grow = short / min(height, width)
        size = (max(32, round(width * grow / 32) * 32), max(32, round(height * grow / 32) * 32))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), (slice(None), slice(None))
    return layout


def letterbox(rgb: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    height, width = rgb.shape[:2]
    shrink = SERVED_SIDE / max(height, width)
    inner_h, inner_w = round(height * shrink), round(width * shrink)
    top, left = (SERVED_SIDE - inner_h) // 2, (SERVED_SIDE - inner_w) // 2
    small = cv2.resize(rgb, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    boxed = cv2.copyMakeBorder(small, top, SERVED_SIDE - inner_h - top, left, SERVED_SIDE - inner_w - left,
                               cv2.BORDER_REPLICATE)
    return boxed, (slice(top, top + inner_h), slice(left, left + inner_w))


LAYOUTS: dict[str, Layout] = {
    "squashed to 512 x 512 (served)": squash,
    **{f"aspect kept, short side {short}": aspect(short) for short in (512, 448, 384, 320, 256)},
    "letterboxed into 512 x 512": letterbox,
}


def scores(session: ort.InferenceSession, layout: Layout, items: list[comp.Composite]) -> dict:
    name = session.get_inputs()[0].name
    per_person: dict[str, list[float]] = {}
    errors, seconds = [], 0.0
    for item in items:
        tensor, crop = layout(item.image)
        started = time.perf_counter()
        low = session.run(None, {name: ((tensor.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]})
        seconds += time.perf_counter() - started
        matte = matte_to_uint8(refine(low[0][0, 0][crop], item.image)) / 255.0
        per_person.setdefault(item.name.split("-")[0], []).append(iou(matte, item.alpha))
        errors.append(float(np.abs(matte - item.alpha).mean()))
    every = [v for values in per_person.values() for v in values]
    return {"iou": float(np.mean(every)), "worst": float(np.min(every)), "error": float(np.mean(errors)),
            "people": {person: float(np.mean(v)) for person, v in per_person.items()},
            "ms": seconds * 1000 / len(items)}


def main() -> int:
    source = get_source(MODEL)
    if source.normalization != "symmetric":
        raise SystemExit(f"{MODEL} is catalogued with normalization {source.normalization!r}; this measures "
                         "MODNet's (RGB - 127.5) / 127.5")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = THREADS, 3
    session = ort.InferenceSession(str(fetch_source(source)), options, providers=["CPUExecutionProvider"])
    sets = {"tuning set": tuning_set(), "evaluation composites": comp.composites("full")}
    print("| set | layout | mean IoU | astronaut | camera man | worst IoU | alpha error | model ms |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name, items in sets.items():
        for label, layout in LAYOUTS.items():
            s = scores(session, layout, items)
            print(f"| {set_name} ({len(items)}) | {label} | {s['iou']:.3f} | {s['people']['astronaut']:.3f} | "
                  f"{s['people']['camera']:.3f} | {s['worst']:.3f} | {s['error']:.4f} | {s['ms']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
