"""``python -m evaluation.upscale``: super-resolution quality and speed, measured offline.

No Triton: each catalog upscaler (``upscale_sharp``, Real-ESRGAN x4plus; ``upscale_fast``, animevideov3; both
from ncnn; ``upscale_psnr_x2`` and ``upscale_psnr_x4``, UpscalerJS ESRGAN thick, from tfjs) is
converted from its source (``converters.build.convert``) and run in ONNX Runtime (CPU, 2 threads, as
served on the 2-core target) over tiles of its ``input_size`` as served (``imaging.tiles.upscale_tiled``,
``OVERLAP_PX``). Quality: real photos (scikit-image's samples, centre-cropped to at most ``MAX_SIDE`` and to a
multiple of 4) are shrunk by ``s`` in {2, 4} with area averaging (``cv2.INTER_AREA``), enlarged back by each
method and compared with the original: PSNR and SSIM on RGB, data range 255 (``skimage.metrics``). For
``s = 2`` the x4 networks' output is shrunk by 2 with area averaging (``imaging.tiles.downscale``), as served.
``whole image`` runs the network on the whole low-resolution photo at once (one tile, no seams) to show
what tiling costs. Speed: model time per tile (a real photo's crop), median of ``--repeats`` after a warm
call, for several tile sizes, interleaved; and the time per input megapixel that follows once the tiles
overlap by ``OVERLAP_PX``. Writes ``evaluation/upscale_results.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from converters.build import convert
from converters.catalog import ModelSource, get_source
from converters.fetch import fetch_source
from evaluation.depth import finite, machine
from imaging.tiles import OVERLAP_PX, downscale, upscale_tiled

MODELS = ("upscale_sharp", "upscale_fast", "upscale_psnr_x4")
SCALES = (2, 4)
MAX_SIDE = 512
TILE_SIZES = (128, 192, 256)
THREADS = 2  # the cpu target's threads per model instance
RESULTS = Path(__file__).with_name("upscale_results")
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
    "camera": lambda: np.repeat(skimage.data.camera()[..., np.newaxis], 3, axis=2),  # greyscale, as RGB
}

Upscaler = Callable[[np.ndarray, int], np.ndarray]  # (low-resolution uint8 RGB, s) -> s times larger


def photo(name: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """A real photo, centre-cropped to at most ``max_side`` and to a multiple of 4 on both sides."""
    rgb = PHOTOS[name]()
    height, width = (min(max_side, side) // 4 * 4 for side in rgb.shape[:2])
    top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
    return np.ascontiguousarray(rgb[top:top + height, left:left + width])


def shrink(rgb: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(rgb, (rgb.shape[1] // s, rgb.shape[0] // s), interpolation=cv2.INTER_AREA)


def bicubic(low: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(low, (low.shape[1] * s, low.shape[0] * s), interpolation=cv2.INTER_CUBIC)


def session(source: ModelSource, threads: int = THREADS) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    model = convert(source, fetch_source(source))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def network(source: ModelSource, run: ort.InferenceSession, whole_image: bool = False) -> Upscaler:
    """The served path: ``source``'s x4 network over tiles (or the whole photo as one tile), then shrunk to
    ``s``."""
    def upscale(low: np.ndarray, s: int) -> np.ndarray:
        tile, overlap = source.input_height, OVERLAP_PX
        if whole_image:
            tile, overlap = max(low.shape[:2]) + 2 * OVERLAP_PX, 2 * OVERLAP_PX
        up = upscale_tiled(low, lambda tiles: run.run(None, {"image": tiles})[0], source.scale, tile, overlap, 2)
        return downscale(up, source.scale // s)
    return upscale


def scores(truth: np.ndarray, made: np.ndarray) -> dict[str, float]:
    return {"psnr": float(peak_signal_noise_ratio(truth, made, data_range=255)),
            "ssim": float(structural_similarity(truth, made, data_range=255, channel_axis=2))}


def quality(methods: dict[str, Upscaler], photos: list[str], scales_of: dict[str, tuple[int, ...]]) -> list[dict]:
    """Each method on each photo at each of its scales (``scales_of[method]``)."""
    rows = []
    for name in photos:
        truth = photo(name)
        for s in SCALES:
            low = shrink(truth, s)
            for method, upscale in methods.items():
                if s not in scales_of[method]:
                    continue
                started = time.perf_counter()
                made = upscale(low, s)
                rows.append({"photo": name, "scale": s, "method": method, "low_res": list(low.shape[:2]),
                             "seconds": time.perf_counter() - started, **scores(truth, made)})
                print(f"{name} x{s} {method}: {rows[-1]['psnr']:.2f} dB, SSIM {rows[-1]['ssim']:.4f}, "
                      f"{rows[-1]['seconds']:.1f} s", flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per scale and method: medians over photos, and the median gain over bicubic on the same photos."""
    out = []
    for s in sorted({r["scale"] for r in rows}):
        base = {r["photo"]: r for r in rows if r["scale"] == s and r["method"] == "bicubic"}
        for method in dict.fromkeys(r["method"] for r in rows if r["scale"] == s):
            mine = [r for r in rows if r["scale"] == s and r["method"] == method]
            out.append({
                "scale": s, "method": method, "photos": len(mine),
                "psnr": statistics.median(r["psnr"] for r in mine), "ssim": statistics.median(r["ssim"] for r in mine),
                "psnr_gain": statistics.median(r["psnr"] - base[r["photo"]]["psnr"] for r in mine),
                "ssim_gain": statistics.median(r["ssim"] - base[r["photo"]]["ssim"] for r in mine),
                "beats_bicubic": sum(r["psnr"] > base[r["photo"]]["psnr"] for r in mine),
            })
    return out


def tiling_cost(rows: list[dict]) -> dict[str, float]:
    """Per model: the median over photos of tiled minus whole-image PSNR at x4."""
    whole = {(r["method"].removesuffix(", whole image"), r["photo"]): r["psnr"] for r in rows
             if r["method"].endswith(", whole image")}
    return {name: statistics.median(r["psnr"] - whole[name, r["photo"]] for r in rows
                                    if r["method"] == name and r["scale"] == 4)
            for name in dict.fromkeys(name for name, _ in whole)}


def tile_times(sessions: dict[str, ort.InferenceSession], sizes: tuple[int, ...], repeats: int) -> list[dict]:
    """Model time per tile, each size and model interleaved so that other load on the machine hits all alike."""
    truth = photo("astronaut")
    tiles = {size: np.ascontiguousarray(truth[:size, :size].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
             for size in sizes}
    times: dict[tuple[str, int], list[float]] = {(name, size): [] for name in sessions for size in sizes}
    for (name, size) in times:  # warm
        sessions[name].run(None, {"image": tiles[size]})
    for _ in range(repeats):
        for (name, size), seconds in times.items():
            started = time.perf_counter()
            sessions[name].run(None, {"image": tiles[size]})
            seconds.append(time.perf_counter() - started)
    return [{"model": name, "tile": size, "seconds_median": statistics.median(seconds), "seconds": seconds,
             "seconds_per_input_mp": statistics.median(seconds) / (size - OVERLAP_PX) ** 2 * 1e6}
            for (name, size), seconds in times.items()]


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Super-resolution: evaluation", "",
        f"`python -m evaluation.upscale {report['arguments']}` on {report['date']}. Method: the docstring of "
        "`evaluation/upscale.py`. Photos: " + ", ".join(f"{p} {'x'.join(map(str, s))}"
                                                          for p, s in report["photo_sizes"].items()) + ".",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('nproc')} cores, {m.get('ram_gib', '?')} GiB, "
        f"GPU: {m.get('gpu')}; "
        f"ONNX Runtime {m.get('onnxruntime')}, {THREADS} threads per model. Load average (1 min) "
        f"{report['load_average_1m']['before']:.1f} before, {report['load_average_1m']['after']:.1f} after: other "
        "work shared the cores, so times are noisy (medians, sizes interleaved).", "",
        "Tiles: each model's catalog `input_size` (" + ", ".join(
            f"{name} {'x'.join(map(str, size))}" for name, size in report["tiles"].items())
        + f"), overlapping by {report['overlap_px']} input pixels (`imaging.tiles`).", "",
        "## Quality (medians over photos; gain = median of the per-photo difference to bicubic)", "",
        "| scale | method | PSNR dB | gain dB | SSIM | gain SSIM | beats bicubic (PSNR) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| x{r['scale']} | {r['method']} | {r['psnr']:.2f} | {r['psnr_gain']:+.2f} | {r['ssim']:.4f} | "
              f"{r['ssim_gain']:+.4f} | {r['beats_bicubic']}/{r['photos']} |" for r in report["summary"]]
    lines += ["", "Per photo (PSNR dB / SSIM):", "", "| photo | scale | " + " | ".join(report["methods"]) + " |",
              "|---|---|" + "---|" * len(report["methods"])]
    for name in report["photo_sizes"]:
        for s in SCALES:
            cells = {r["method"]: f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in report["rows"]
                     if r["photo"] == name and r["scale"] == s}
            if cells:
                lines.append(f"| {name} | x{s} | " + " | ".join(cells.get(k, "–") for k in report["methods"]) + " |")
    lines += ["", "## Reading", "",
              "- Both Real-ESRGAN networks (upscale_sharp, upscale_fast) are GANs trained for real-world "
              "degradations (blur, noise, JPEG): they "
              "sharpen and invent texture, which PSNR and SSIM against the original penalise, while bicubic's "
              "blur is what those scores favour. On these clean, area-downscaled photos neither beats bicubic in "
              "median PSNR (table above).",
              "- UpscalerJS ESRGAN thick (upscale_psnr_x2, upscale_psnr_x4; an RRDN trained on DIV2K): " + "; ".join(
                  f"{r['method']} at x{r['scale']} {r['psnr_gain']:+.2f} dB PSNR and {r['ssim_gain']:+.4f} SSIM over "
                  f"bicubic (median), ahead in PSNR on {r['beats_bicubic']}/{r['photos']} photos"
                  for r in report["summary"] if r["method"].startswith("upscale_psnr")) + ".",
              "- Tiling cost (x4, median over photos of tiled minus whole-image PSNR): " + ", ".join(
                  f"{name} {cost:+.2f} dB" for name, cost in report["tiling_cost_db"].items()) + "."]
    lines += ["", f"## Model time per tile (ONNX Runtime, {THREADS} threads, median of {report['repeats']})", "",
              f"| model | tile | seconds per tile | seconds per input megapixel (overlap {OVERLAP_PX}) |",
              "|---|---|---|---|"]
    lines += [f"| {t['model']} | {t['tile']}x{t['tile']} | {t['seconds_median']:.2f} | "
              f"{t['seconds_per_input_mp']:.0f} |" for t in report["tile_times"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per tile size (median)")
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS), choices=list(PHOTOS))
    parser.add_argument("--tile-sizes", nargs="+", type=int, default=list(TILE_SIZES))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    sources = {name: get_source(name) for name in MODELS}
    sessions = {name: session(source) for name, source in sources.items()}
    methods: dict[str, Upscaler] = {"bicubic": bicubic}
    scales_of = {"bicubic": SCALES}
    for name, source in sources.items():
        methods[name] = network(source, sessions[name])
        scales_of[name] = tuple(s for s in SCALES if source.scale % s == 0)  # an x4 network serves x2 shrunk
        if source.scale == 4:  # the tiling cost, at x4
            methods[f"{name}, whole image"] = network(source, sessions[name], whole_image=True)
            scales_of[f"{name}, whole image"] = (4,)
    rows = quality(methods, args.photos, scales_of)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(), "repeats": args.repeats, "overlap_px": OVERLAP_PX, "methods": list(methods),
        "photo_sizes": {name: list(photo(name).shape[:2]) for name in args.photos},
        "tiles": {name: list(source.input_size) for name, source in sources.items()},
        "summary": summary(rows), "rows": rows, "tiling_cost_db": tiling_cost(rows),
        "tile_times": tile_times(sessions, tuple(args.tile_sizes), args.repeats),
    }
    report["load_average_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    RESULTS.with_suffix(".json").write_text(json.dumps(finite(report), indent=1) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {RESULTS.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
