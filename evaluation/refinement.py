"""``python -m evaluation.refinement``: the matte refinement and cutout-colour options, measured offline.

No Triton: each catalog matte model runs in ONNX Runtime on the composites with known alpha
(``evaluation.composites``), preprocessed as the service does (``imaging.tensors.model_input``), and
every refinement option of ``imaging.matte`` turns its low-resolution matte into the output-size matte.
Prints a markdown report (imaging/REFINEMENT.md is made from it):

- per model and option: mean alpha error overall and in the edge band (``0.05 < true alpha < 0.95``,
  dilated by ``EDGE_DILATE_PX``), IoU at 0.5, on the 8-bit matte as served;
- per option: milliseconds per megapixel at 1 MP and 12 MP (median of ``--repeats``);
- cutout colours: the soft-band colour error (``evaluation.metrics``) of the served cutout with the
  photo's colours and with the estimated foreground, under the served matte and under the true alpha.

``--tune`` measures the same options on a separate tuning set (the two people over other sample
photos, other placements): parameters are chosen there, never on the evaluation set.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from converters.catalog import ModelSource, load_catalog
from evaluation import composites as comp
from evaluation.metrics import score
from imaging.matte import SERVED, Refinement, estimate_foreground, layers, refine
from imaging.outputs import cutout_rgba, matte_to_uint8
from imaging.tensors import model_input

REPO = Path(__file__).resolve().parent.parent
EDGE_DILATE_PX = 3
# None of the evaluation's photos (evaluation.composites.BACKGROUNDS). Until 2026-12-03 the first was "cat", which
# is the evaluation's "chelsea" under another name: the motorcycle (a salient object too) replaced it.
TUNING_BACKGROUNDS = ("motorcycle", "immunohistochemistry", "colorwheel", "gravel", "clock")
TUNING_SEED = 7
TIMING_SIZES = {"1 MP": (1152, 864), "12 MP": (4000, 3000)}

OPTIONS: dict[str, Refinement] = {
    "bilinear (today)": Refinement(method="bilinear"),
    "guided, luma, output size": Refinement(method="guided", colour=False),
    "guided, RGB, output size": Refinement(method="guided"),
    "fast guided, luma": Refinement(method="fast_guided", colour=False),
    "fast guided, RGB": Refinement(method="fast_guided"),
}


def tuning_set(placements: int = 1) -> list[comp.Composite]:
    """The tuning composites: both people over backgrounds the evaluation set does not use, ``placements`` per
    person and background (1: the 10 the refinement was tuned on; more draw other placements)."""
    rng = np.random.default_rng(TUNING_SEED)
    out = []
    for who in comp.PEOPLE:
        for back in TUNING_BACKGROUNDS:
            for _ in range(placements):
                scale = round(float(rng.uniform(*comp.SCALES)), 2)
                mirrored = bool(rng.random() < 0.5)
                left, right = comp.cut_sides(comp.person(who)[1][:, ::-1] if mirrored else comp.person(who)[1])
                x = 0.0 if left else 1.0 if right else round(float(rng.uniform(0.0, 1.0)), 2)
                spec = comp.Spec(who, back, scale, x, mirrored, comp.QUALITIES[len(out) % 2])
                out.append(comp.render(spec))
    return out


@dataclass(frozen=True)
class Model:
    source: ModelSource
    session: ort.InferenceSession

    def run(self, image: np.ndarray) -> np.ndarray:
        """The model's (h, w) output for the uint8 photo ``image``, preprocessed as the service does."""
        height, width = self.source.input_size
        tensor = model_input(Image.fromarray(image), height, width, self.source.normalization)[np.newaxis]
        return self.session.run(None, {self.session.get_inputs()[0].name: tensor})[0][0, 0]


def models(repository: Path) -> list[Model]:
    """Every alpha model of the catalog whose ONNX file is built in ``repository``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    found = []
    for name, source in load_catalog().items():
        path = repository / name / "1" / "model.onnx"
        if source.output != "alpha":
            continue
        if not path.exists():
            print(f"<!-- skipped {name}: {path} not built -->", file=sys.stderr)
            continue
        found.append(Model(source, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])))
    return found


def edge_band(alpha: np.ndarray) -> np.ndarray:
    soft = ((alpha > 0.05) & (alpha < 0.95)).astype(np.uint8)
    side = 2 * EDGE_DILATE_PX + 1
    return cv2.dilate(soft, np.ones((side, side), np.uint8)).astype(bool)


def matte_scores(matte: np.ndarray, truth: comp.Composite) -> tuple[float, float, float]:
    """(alpha error, edge-band alpha error, IoU) of an 8-bit matte."""
    s = score(truth.alpha, truth.foreground, truth.image, matte)
    band = edge_band(truth.alpha)
    edge = float(np.abs(matte[band] / 255.0 - truth.alpha[band]).mean())
    return s.alpha_error, edge, s.iou


def quality(items: list[comp.Composite], mattes: list[np.ndarray], settings: Refinement) -> tuple[float, ...]:
    rows = [matte_scores(matte_to_uint8(refine(low, c.image, settings)), c)
            for c, low in zip(items, mattes, strict=True)]
    return tuple(float(np.mean(col)) for col in zip(*rows, strict=True))


def oracle_mattes(items: list[comp.Composite], side: int) -> list[np.ndarray]:
    """The true alpha area-reduced as far as a ``side``-pixel model matte is from a 12 MP (4000 px) output."""
    factor = TIMING_SIZES["12 MP"][0] / side
    return [cv2.resize(c.alpha, (max(1, round(c.alpha.shape[1] / factor)), max(1, round(c.alpha.shape[0] / factor))),
                       interpolation=cv2.INTER_AREA) for c in items]


_IMPORT_S: list[float] = []  # how long the first ``import pymatting`` took (numba compiles at import)


def _pymatting():  # noqa: ANN202 - an optional module, measured only: not a dependency (numba JIT at start-up)
    started = time.perf_counter()
    try:
        import pymatting
    except ImportError:
        return None
    if not _IMPORT_S:
        _IMPORT_S.append(time.perf_counter() - started)
    return pymatting


def closed_form(items: list[comp.Composite], mattes: list[np.ndarray]) -> tuple[float, ...] | None:
    """Closed-form matting (pymatting, when importable) in the unknown band of the upsampled matte."""
    pymatting = _pymatting()
    if pymatting is None:
        return None
    rows = []
    for c, low in zip(items, mattes, strict=True):
        coarse = refine(low, c.image, Refinement(method="bilinear"))
        trimap = np.where(coarse > 0.95, 1.0, np.where(coarse < 0.05, 0.0, 0.5))
        alpha = pymatting.estimate_alpha_cf(c.image / 255.0, trimap).astype(np.float32)
        rows.append(matte_scores(matte_to_uint8(alpha), c))
    return tuple(float(np.mean(col)) for col in zip(*rows, strict=True))


def closed_form_timing(image: np.ndarray, low: np.ndarray) -> dict[str, float] | None:
    """Seconds per megapixel of pymatting's closed-form alpha and multilevel foreground at 1 MP, and its import."""
    pymatting = _pymatting()
    if pymatting is None:
        return None
    photo = cv2.resize(image, TIMING_SIZES["1 MP"], interpolation=cv2.INTER_LINEAR)
    coarse = refine(low, photo, Refinement(method="bilinear"))
    trimap = np.where(coarse > 0.95, 1.0, np.where(coarse < 0.05, 0.0, 0.5))
    megapixels = photo.shape[0] * photo.shape[1] / 1e6
    started = time.perf_counter()
    pymatting.estimate_alpha_cf(photo / 255.0, trimap)
    alpha_s = (time.perf_counter() - started) / megapixels
    started = time.perf_counter()
    pymatting.estimate_foreground_ml(photo / 255.0, coarse.astype(np.float64))
    return {"import": _IMPORT_S[0], "alpha": alpha_s, "foreground": (time.perf_counter() - started) / megapixels}


def median_ms(work: Callable[[], object], repeats: int) -> float:
    work()  # warm caches and allocator
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def timing(image: np.ndarray, low: np.ndarray, settings: Refinement, repeats: int, colours: bool) -> dict[str, float]:
    """ms per megapixel of the refinement (or of the served foreground estimate, if ``colours``) at each size."""
    out = {}
    for label, size in TIMING_SIZES.items():
        photo = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        megapixels = size[0] * size[1] / 1e6
        if colours:
            matte, band = refine(low, photo, settings), max(size) / max(low.shape)
            out[label] = median_ms(lambda p=photo, m=matte, b=band: estimate_foreground(p, m, b), repeats) / megapixels
        else:
            out[label] = median_ms(lambda p=photo, s=settings: refine(low, p, s), repeats) / megapixels
    return out


def peak_memory_mb(image: np.ndarray, low: np.ndarray, size: tuple[int, int]) -> float:
    """Peak Python-heap growth (MB, numpy and OpenCV outputs) of the served cutout layers at ``size``."""
    photo = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    tracemalloc.start()
    layers(low, size, photo, colours=True, settings=replace(SERVED, max_pixels=10**9))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def visible_error(c: comp.Composite, matte: np.ndarray, colour: np.ndarray) -> float:
    """Mean |cutout over a new background - truth over it| (0-255) in the true soft band, white and black."""
    band = (c.alpha > 0.05) & (c.alpha < 0.95)
    if not band.any():
        return float("nan")
    pred_a = matte[band].astype(np.float64)[:, None] / 255
    true_a = c.alpha[band].astype(np.float64)[:, None]
    shown, truth = cutout_rgba(colour, matte)[band][:, :3], c.foreground[band]
    return float(np.mean([np.abs(pred_a * shown + (1 - pred_a) * bg - true_a * truth - (1 - true_a) * bg).mean()
                          for bg in (0.0, 255.0)]))


def colour_scores(items: list[comp.Composite], served: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Cutouts with the photo's colours vs the estimated ones, under the same 8-bit matte: soft-band error
    against the true foreground (evaluation.metrics) and the visible error over new backgrounds."""
    rows: dict[str, list[float]] = {}
    for c, (matte, estimated) in zip(items, served, strict=True):
        for label, colour in (("raw", c.image), ("estimated", estimated)):
            s = score(c.alpha, c.foreground, c.image, matte, cutout_rgba(colour, matte))
            if s.band_pixels:
                rows.setdefault(f"band {label}", []).append(s.band_error)
            rows.setdefault(f"visible {label}", []).append(visible_error(c, matte, colour))
    return {k: float(np.nanmean(v)) for k, v in rows.items()}


def served_cutouts(items: list[comp.Composite], lows: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(8-bit matte, colour) of the served cutout of each composite from its low-resolution matte."""
    out = []
    for c, low in zip(items, lows, strict=True):
        served = layers(low, (c.image.shape[1], c.image.shape[0]), c.image, colours=True)
        out.append((matte_to_uint8(served.alpha), served.colour))
    return out


def planted_fringe() -> dict[str, float]:
    """A grey disc with a 16 px soft edge over saturated green, where the true foreground is exactly grey:
    colour error (0-255) in the soft band of the photo's colour and of the served cutout's, from a 10x
    coarser matte (as a model's), and of the estimate under the true alpha."""
    size = 240
    yy, xx = np.mgrid[:size, :size]
    alpha = np.clip((size * 0.3 - np.hypot(yy - size / 2, xx - size / 2)) / 16 + 0.5, 0.0, 1.0).astype(np.float32)
    a = alpha[..., None]
    photo = np.rint(a * np.array([128.0, 128.0, 128.0]) + (1 - a) * np.array([0.0, 255.0, 0.0])).astype(np.uint8)
    soft = (alpha > 0.05) & (alpha < 0.95)
    served = layers(cv2.resize(alpha, (24, 24), interpolation=cv2.INTER_AREA), (size, size), photo, colours=True)
    error = {"photo colour": photo, "served cutout": served.colour, "estimate, true alpha":
             estimate_foreground(photo, alpha, band=16)}
    return {k: float(np.abs(v[soft].astype(np.float64) - 128.0).mean()) for k, v in error.items()}


def sweep(items: list[comp.Composite], found: list[Model]) -> None:
    """The tuning sweep of the fast guided filter's parameters (on the tuning set)."""
    print("| matte | work scale | radius | eps | alpha error | edge error | IoU |\n|---|---|---|---|---|---|---|")
    sets = {m.source.name: [m.run(c.image) for c in items] for m in found}
    sets.update({f"true alpha at 12 MP / {side}": oracle_mattes(items, side) for side in (256, 512)})
    for name, mattes in sets.items():
        base = quality(items, mattes, Refinement(method="bilinear"))
        print(f"| {name} | bilinear | | | {base[0]:.4f} | {base[1]:.4f} | {base[2]:.4f} |")
        for work_scale in (1.0, 2.0):
            for radius in (1, 2, 4):
                for eps in (1e-5, 1e-4, 1e-3):
                    e, edge, iou = quality(items, mattes, Refinement(work_scale=work_scale, radius=radius, eps=eps))
                    print(f"| {name} | {work_scale:g} | {radius} | {eps:g} | {e:.4f} | {edge:.4f} | {iou:.4f} |",
                          flush=True)


def quality_table(items: list[comp.Composite], sets: dict[str, list[np.ndarray]], with_cf: bool) -> None:
    print("| matte | option | alpha error | edge-band error | IoU@0.5 |\n|---|---|---|---|---|")
    for name, mattes in sets.items():
        for label, settings in OPTIONS.items():
            e, edge, iou = quality(items, mattes, settings)
            print(f"| {name} | {label} | {e:.4f} | {edge:.4f} | {iou:.4f} |", flush=True)
        cf = closed_form(items, mattes) if with_cf else None
        if cf is not None:
            print(f"| {name} | closed-form matting in the band (pymatting) | {cf[0]:.4f} | {cf[1]:.4f} | {cf[2]:.4f} |")


def report(items: list[comp.Composite], found: list[Model], repeats: int, with_cf: bool) -> None:
    print(f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, OpenCV {cv2.__version__}; {len(items)} composites.\n")
    mattes = {m.source.name: [m.run(c.image) for c in items] for m in found}
    print("Model mattes on the composites (0.44 MP outputs):\n")
    quality_table(items, mattes, with_cf=False)
    print("\nTrue alpha reduced to a model matte's resolution relative to a 12 MP output:\n")
    sides = sorted({max(m.source.input_size) for m in found})
    quality_table(items, {f"true alpha / {4000 // s} ({s} px model)": oracle_mattes(items, s) for s in sides}, with_cf)
    print("\n| option | matte side | ms/MP at 1 MP | ms/MP at 12 MP |\n|---|---|---|---|")
    image = items[0].image
    for side in sides:
        low = cv2.resize(items[0].alpha, (side, side), interpolation=cv2.INTER_AREA)
        for label, settings in OPTIONS.items():
            t = timing(image, low, settings, repeats, colours=False)
            print(f"| {label} | {side} | {t['1 MP']:.1f} | {t['12 MP']:.1f} |", flush=True)
    cf = closed_form_timing(image, cv2.resize(items[0].alpha, (sides[0], sides[0]))) if with_cf else None
    if cf is not None:
        print(f"| closed-form matting (pymatting; import with numba JIT {cf['import']:.0f} s) | {sides[0]} "
              f"| {cf['alpha'] * 1000:.0f} | |\n| multilevel foreground (pymatting) | {sides[0]} "
              f"| {cf['foreground'] * 1000:.0f} | |")
    for side in sides:
        low = cv2.resize(items[0].alpha, (side, side), interpolation=cv2.INTER_AREA)
        t = timing(image, low, SERVED, repeats, colours=True)
        print(f"| foreground estimate (blur fusion x2, served) | {side} | {t['1 MP']:.1f} | {t['12 MP']:.1f} |",
              flush=True)
    low = cv2.resize(items[0].alpha, (sides[0], sides[0]), interpolation=cv2.INTER_AREA)
    print("\nPeak memory of the served cutout layers (refined matte + colours), "
          f"{sides[0]} px matte: " + ", ".join(f"{label} {peak_memory_mb(image, low, size):.0f} MB"
                                             for label, size in {**TIMING_SIZES, "24 MP": (5657, 4243)}.items()))
    print("\n| matte | band error, photo colour | band error, estimated | visible error, photo colour "
          "| visible error, estimated |\n|---|---|---|---|---|")
    sets = {"true alpha": [(matte_to_uint8(c.alpha), estimate_foreground(c.image, c.alpha)) for c in items],
            **{name: served_cutouts(items, lows) for name, lows in mattes.items()},
            **{f"true alpha / {4000 // s}, served": served_cutouts(items, oracle_mattes(items, s)) for s in sides}}
    for name, served in sets.items():
        c = colour_scores(items, served)
        print(f"| {name} | {c['band raw']:.2f} | {c['band estimated']:.2f} | {c['visible raw']:.2f} "
              f"| {c['visible estimated']:.2f} |", flush=True)
    fringe = planted_fringe()
    print("\nPlanted fringe (grey disc, 16 px soft edge, over pure green; true foreground exactly grey), mean "
          "|colour - grey| in the soft band: " + ", ".join(f"{k} {v:.1f}" for k, v in fringe.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=REPO / "model_repository",
                        help="where model_repository/<model>/1/model.onnx are built")
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--tune", action="store_true", help="the parameter sweep on the tuning set instead")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--closed-form", action="store_true",
                        help="also closed-form matting (needs pymatting importable; not a dependency)")
    args = parser.parse_args(argv)
    found = models(args.repository)
    if not found:
        raise SystemExit(f"no matte model built in {args.repository}; run `make models`")
    if args.tune:
        sweep(tuning_set(), found)
    else:
        report(comp.composites(args.size), found, args.repeats, args.closed_form)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
