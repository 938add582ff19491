"""``python -m evaluation.runtimes``: each catalog model in each runtime, timed and gated against FP32.

No Triton: each model of the cpu target (``MODELS``) is opened in every runtime of
``triton_models.runtime`` the way the served step opens it (``open_session``, ``THREADS`` threads, no
spin-waiting), and

- timed at batch 1 on a real composite's input tensor: ``--repeats`` rounds, each runtime in turn within a
  round (so that load from other work on the machine falls on all of them alike), each round's time the mean
  of enough runs to last ``ROUND_S``; the median of the rounds is reported;
- gated against ONNX Runtime FP32 on the evaluation composites (``evaluation.composites``, 48 by default),
  preprocessed as the service does:
  - mattes: IoU at 0.5 of the served matte (refined to the composite's size, 8-bit) with the true alpha within
    ``IOU_TOLERANCE`` of FP32's, and the mean absolute difference of the model's matte from FP32's at most
    ``MAX_MEAN_ABS_DIFF``;
  - depth: Spearman rank correlation of the model's depth map with FP32's, mean over the composites, at least
    ``MIN_SPEARMAN``;
- upscalers (pixel models with a scale): timed on one tile, and gated on the real photos of
  ``evaluation.upscale`` shrunk by the model's scale and enlarged again over tiles as the served step does
  (``imaging.tiles.upscale_tiled``): PSNR against the original photo within ``PSNR_TOLERANCE`` dB of FP32's
  (mean over the photos), and PSNR against FP32's result at least ``MIN_PSNR_TO_FP32`` dB on every photo.

A model's choice is the fastest runtime that passes its gates, or a more exact one (ONNX Runtime, then OpenVINO
FP32) less than ``MIN_GAIN`` slower than it. converters/catalog.toml declares the choice (``cpu_runtime``), and
tests/unit/test_runtime_choice.py checks that each declared OpenVINO runtime passed here. Writes
``evaluation/runtime_results.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import peak_signal_noise_ratio

from converters.catalog import ModelSource, load_catalog
from evaluation import composites as comp
from evaluation import upscale as upscale_eval
from evaluation.__main__ import git_commit, machine
from evaluation.metrics import iou
from imaging.matte import refine
from imaging.outputs import matte_to_uint8
from imaging.tensors import model_input
from imaging.tiles import OVERLAP_PX, upscale_tiled
from triton_models.runtime import ONNXRUNTIME, RUNTIMES, Session, host_flags, open_session, precision_for

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"
RESULTS = Path(__file__).with_name("runtime_results")
MODELS = ("depth", "matte_fast", "matte_portrait", "matte_object", "matte_object_lite", "upscale_psnr_x4",
          "upscale_sharp", "upscale_fast")
REFERENCE = ONNXRUNTIME  # FP32
THREADS = 2
ROUND_S = 0.25
IOU_TOLERANCE = 0.005
MAX_MEAN_ABS_DIFF = 0.01
MIN_SPEARMAN = 0.99
PSNR_TOLERANCE = 0.05  # dB against the original photo, as evaluation/upscale_results.md scores the upscalers
MIN_PSNR_TO_FP32 = 45.0  # dB: a difference from FP32's pixels that no one can see
MIN_GAIN = 0.05  # a less exact runtime must be this much faster to be chosen (noise on a shared machine)


def tensor(source: ModelSource, image: np.ndarray) -> np.ndarray:
    height, width = source.input_size
    return model_input(Image.fromarray(image), height, width, source.normalization)[np.newaxis]


def run(session: Session, batch: np.ndarray) -> np.ndarray:
    """The one output plane of a matte or depth model, or the whole result of a pixel model."""
    result = session.run({session.input_names[0]: batch})[0]
    return result[0, 0] if result.shape[1] == 1 else result


def timings(sessions: dict[str, Session], batch: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """Milliseconds per run of each session, one value per round, the sessions interleaved within a round."""
    runs = {}
    for name, session in sessions.items():
        run(session, batch)  # first run: allocations, lazy initialisation
        started = time.perf_counter()
        run(session, batch)
        runs[name] = max(1, round(ROUND_S / max(time.perf_counter() - started, 1e-4)))
    rounds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, session in sessions.items():
            started = time.perf_counter()
            for _ in range(runs[name]):
                run(session, batch)
            rounds[name].append((time.perf_counter() - started) * 1000 / runs[name])
    return rounds


def upscaled(source: ModelSource, session: Session, low: np.ndarray) -> np.ndarray:
    """``low`` enlarged by the model over tiles, as the served upscale step runs it."""
    return upscale_tiled(low, lambda tiles: run(session, tiles), source.scale, source.input_height, OVERLAP_PX, 2)


def upscale_gate(truths: list[np.ndarray], outputs: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    psnr = float(np.mean([peak_signal_noise_ratio(t, o, data_range=255) for t, o in zip(truths, outputs, strict=True)]))
    psnr_fp32 = float(np.mean([peak_signal_noise_ratio(t, r, data_range=255)
                               for t, r in zip(truths, reference, strict=True)]))
    differing = [float(peak_signal_noise_ratio(r, o, data_range=255))
                 for o, r in zip(outputs, reference, strict=True) if not np.array_equal(r, o)]
    to_fp32 = min(differing) if differing else None  # None: the same pixels as FP32's on every photo
    return {"psnr": psnr, "psnr_fp32": psnr_fp32, "min_psnr_to_fp32": to_fp32,
            "passed": abs(psnr - psnr_fp32) <= PSNR_TOLERANCE and (to_fp32 is None or to_fp32 >= MIN_PSNR_TO_FP32)}


def measure_upscaler(source: ModelSource, sessions: dict[str, Session], repeats: int) -> tuple[dict, dict]:
    """(rounds of the timing on one tile, gates per runtime) of an upscaler on evaluation.upscale's photos."""
    truths = [upscale_eval.photo(name) for name in upscale_eval.PHOTOS]
    lows = [upscale_eval.shrink(truth, source.scale) for truth in truths]
    tile = np.random.default_rng(0).random((1, 3, *source.input_size), dtype=np.float32)
    rounds = timings(sessions, tile, repeats)
    outputs = {name: [upscaled(source, session, low) for low in lows] for name, session in sessions.items()}
    return rounds, {name: upscale_gate(truths, outputs[name], outputs[REFERENCE]) for name in sessions}


def matte_gate(items: list[comp.Composite], outputs: list[np.ndarray], reference: list[np.ndarray],
               reference_iou: float) -> dict:
    ious = [iou(matte_to_uint8(refine(low, c.image)) / 255.0, c.alpha) for c, low in zip(items, outputs, strict=True)]
    diff = float(np.mean([np.abs(out - ref).mean() for out, ref in zip(outputs, reference, strict=True)]))
    mean_iou = float(np.mean(ious))
    return {"iou": mean_iou, "iou_fp32": reference_iou, "mean_abs_diff": diff,
            "passed": abs(mean_iou - reference_iou) <= IOU_TOLERANCE and diff <= MAX_MEAN_ABS_DIFF}


def depth_gate(outputs: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    rhos = [float(spearmanr(out.ravel(), ref.ravel()).statistic) for out, ref in zip(outputs, reference, strict=True)]
    return {"spearman_mean": float(np.mean(rhos)), "spearman_min": float(np.min(rhos)),
            "passed": float(np.mean(rhos)) >= MIN_SPEARMAN}


def choose(runtimes: dict[str, dict]) -> str:
    """The fastest runtime that passed its gates; a runtime less than MIN_GAIN slower than that one and more
    exact (earlier in RUNTIMES: ONNX Runtime, then OpenVINO FP32, then BF16) is preferred, since a difference
    that small is within the noise of a shared machine."""
    passed = {name: runtimes[name]["median_ms"] for name in RUNTIMES if runtimes[name]["gates"]["passed"]}
    fastest = min(passed.values())
    return next(name for name, ms in passed.items() if (1 - MIN_GAIN) * ms <= fastest)


def measure_model(source: ModelSource, items: list[comp.Composite], repeats: int,
                  progress: Callable[[str], None]) -> dict:
    path = MODEL_REPOSITORY / source.name / "1" / "model.onnx"
    sessions = {name: open_session(path, name, THREADS, spinning=False) for name in RUNTIMES}
    if source.scale > 1:
        rounds, gates = measure_upscaler(source, sessions, repeats)
        return _result(source, rounds, gates, progress)
    inputs = [tensor(source, c.image) for c in items]
    rounds = timings(sessions, inputs[0], repeats)
    outputs = {name: [run(session, batch) for batch in inputs] for name, session in sessions.items()}
    reference = outputs[REFERENCE]
    reference_iou = (float(np.mean([iou(matte_to_uint8(refine(low, c.image)) / 255.0, c.alpha)
                                    for c, low in zip(items, reference, strict=True)]))
                     if source.output == "alpha" else None)
    gates = {name: depth_gate(outputs[name], reference) if source.output == "depth"
             else matte_gate(items, outputs[name], reference, reference_iou) for name in RUNTIMES}
    return _result(source, rounds, gates, progress)


def _result(source: ModelSource, rounds: dict[str, list[float]], gates: dict[str, dict],
            progress: Callable[[str], None]) -> dict:
    runtimes = {}
    for name in RUNTIMES:
        runtimes[name] = {"precision": (precision_for(name, host_flags()) or "f32").upper(),
                          "median_ms": statistics.median(rounds[name]), "round_ms": rounds[name],
                          "gates": gates[name]}
        progress(f"{source.name} {name}: {runtimes[name]['median_ms']:.1f} ms, gates {gates[name]}")
    return {"output": source.output, "input_size": list(source.input_size), "runtimes": runtimes,
            "chosen": choose(runtimes)}


def measure(models: list[str], size: str, repeats: int, progress: Callable[[str], None]) -> dict:
    catalog = load_catalog()
    items = comp.composites(size)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "git": git_commit(), "machine": machine(),
        "command": shlex.join(["python", "-m", "evaluation.runtimes", *sys.argv[1:]]),
        "threads": THREADS, "repeats": repeats, "composites": len(items), "set": size,
        "gates": {"iou_tolerance": IOU_TOLERANCE, "max_mean_abs_diff": MAX_MEAN_ABS_DIFF,
                  "min_spearman": MIN_SPEARMAN, "psnr_tolerance": PSNR_TOLERANCE,
                  "min_psnr_to_fp32": MIN_PSNR_TO_FP32, "min_gain": MIN_GAIN},
        "models": {name: measure_model(catalog[name], items, repeats, progress) for name in models},
    }


def _gate_text(result: dict) -> str:
    g = result["gates"]
    verdict = "pass" if g["passed"] else "**fail**"
    if "spearman_mean" in g:
        return f"Spearman {g['spearman_mean']:.4f} (min {g['spearman_min']:.4f}): {verdict}"
    if "psnr" in g:
        to_fp32 = "identical" if g["min_psnr_to_fp32"] is None else f">= {g['min_psnr_to_fp32']:.1f} dB"
        return f"PSNR {g['psnr']:.3f} vs {g['psnr_fp32']:.3f} dB, to FP32 {to_fp32}: {verdict}"
    return f"IoU {g['iou']:.4f} vs {g['iou_fp32']:.4f}, diff {g['mean_abs_diff']:.4f}: {verdict}"


def document(results: dict) -> str:
    m, g = results["machine"], results["git"]
    gates = results["gates"]
    lines = [
        "# Runtimes per model (cpu target)",
        "",
        f"Made by `{results['command']}` (evaluation/runtimes.py). Each model opened as the served step opens it "
        f"(triton_models/runtime.py: {results['threads']} threads, no spin-waiting), batch 1. Time: median of "
        f"{results['repeats']} rounds, the runtimes interleaved within each round, each round the mean of runs "
        "lasting about 0.25 s. Absolute times depend on the machine's other load; the runtimes of one model were "
        "measured side by side, interleaved.",
        "",
        f"Gates against ONNX Runtime FP32 on {results['composites']} evaluation composites "
        "(evaluation/composites.py): mattes: IoU of the served matte with the true alpha within "
        f"{gates['iou_tolerance']} of FP32's and mean absolute difference of the model's matte from FP32's "
        f"<= {gates['max_mean_abs_diff']}; depth: mean Spearman rank correlation with FP32 >= "
        f"{gates['min_spearman']}; upscalers (timed on one tile): on {len(upscale_eval.PHOTOS)} real photos "
        "(evaluation/upscale.py) shrunk by the scale and enlarged over tiles as served, PSNR against the "
        f"original within {gates['psnr_tolerance']} dB of FP32's and PSNR against FP32's result >= "
        f"{gates['min_psnr_to_fp32']:.0f} dB on every photo. Chosen: the fastest runtime that passes, or a more "
        f"exact one (ONNX Runtime, then OpenVINO FP32) less than {gates['min_gain']:.0%} slower than it.",
        "",
        f"- Machine: {m.get('cpu_model', '?')}, {m.get('nproc')} usable cores; AMX: "
        f"{', '.join(m.get('amx', [])) or 'none'}; AVX-512: {', '.join(m.get('avx512', [])) or 'none'}.",
        f"- Date: {results['date']}; commit `{g['commit']}`{' (with uncommitted changes)' if g['dirty'] else ''}.",
        "",
        "| model | runtime | precision | ms (median) | gates | |",
        "|---|---|---|---|---|---|",
    ]
    for name, model in results["models"].items():
        for runtime, r in model["runtimes"].items():
            mark = "**chosen**" if runtime == model["chosen"] else ""
            lines.append(f"| {name} | {runtime} | {r['precision']} | {r['median_ms']:.1f} | {_gate_text(r)} | {mark} |")
    lines += ["", "converters/catalog.toml declares each model's `cpu_runtime` as chosen here (a model without "
              "the key runs in onnxruntime; tests/unit/test_runtime_choice.py checks the two agree):", ""]
    lines += [f"- {name}: {model['chosen']}" for name, model in results["models"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.runtimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--set", choices=("full", "small"), default="full", help="48 composites, or 4 (quick)")
    parser.add_argument("--repeats", type=int, default=7, help="timing rounds (at least 5)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="writes <out>.md and <out>.json")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    missing = [name for name in args.models if not (MODEL_REPOSITORY / name / "1" / "model.onnx").exists()]
    if missing:
        parser.error(f"models not built: {missing}; run `make models`")
    results = measure(args.models, args.set, args.repeats, lambda line: print(line, file=sys.stderr, flush=True))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(document(results))
    print(document(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
