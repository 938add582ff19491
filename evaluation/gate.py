"""``python -m evaluation.gate``: the person gate (``imaging.person_gate``) on the portrait matte, measured offline.

No Triton: the served ONNX files of MODNet (``matte_portrait``) and of MediaPipe's selfie segmenter
(``matte_fast``) run in ONNX Runtime, preprocessed as the service does (``evaluation.refinement.models``). Each
portrait matte is gated by the segmenter's (or not), refined to the composite's size as served and scored at 8
bits: mean and worst IoU at 0.5, mean absolute alpha error.

The gate's threshold and reach are chosen on the tuning set, enlarged to ``TUNING_PLACEMENTS`` placements per
person and background (30 composites; the 10 of one placement decide too little); the evaluation composites
are only reported. Prints a markdown report (evaluation/gate_results.md is made from it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from evaluation import composites as comp
from evaluation.metrics import alpha_error, iou
from evaluation.refinement import REPO, Model, models, tuning_set
from imaging import person_gate as gate
from imaging.matte import refine
from imaging.outputs import matte_to_uint8

PORTRAIT, PERSON = "matte_portrait", "matte_fast"
TUNING_PLACEMENTS = 3
THRESHOLDS = (0.2, 0.3, 0.5)
REACHES = (0.05, 0.08, 0.12, 0.16, 0.2)
ERROR_TIE = 0.001  # alpha errors this close count as equal
IOU_TIE = 0.002  # and mean IoUs this close


def served(alpha: np.ndarray, item: comp.Composite) -> np.ndarray:
    return matte_to_uint8(refine(alpha, item.image)) / 255.0


def scores(mattes: list[np.ndarray], items: list[comp.Composite]) -> dict[str, float]:
    ious = [iou(m, c.alpha) for m, c in zip(mattes, items, strict=True)]
    return {"iou": float(np.mean(ious)), "worst": float(np.min(ious)),
            "error": float(np.mean([alpha_error(m, c.alpha) for m, c in zip(mattes, items, strict=True)]))}


def measure(items: list[comp.Composite], options: list[tuple[float, float] | None],
            found: dict[str, Model]) -> list[dict]:
    """Per option (None: no gate; else (threshold, reach)) the scores over ``items``."""
    lows = [(found[PORTRAIT].run(c.image), found[PERSON].run(c.image)) for c in items]
    rows = []
    for option in options:
        mattes = [served(portrait if option is None else gate.person_gate(portrait, person, *option), c)
                  for (portrait, person), c in zip(lows, items, strict=True)]
        rows.append({"option": option, **scores(mattes, items)})
    return rows


def choose(rows: list[dict]) -> tuple[float, float]:
    """The tuning set's choice among the gates tied for best (mean IoU within ``IOU_TIE`` of the best and alpha
    error within ``ERROR_TIE`` of the lowest): the one that clears least, the widest reach, then the lowest
    threshold. A gate that clears more than the tuning set can justify cuts what a person holds (a helmet, a bag),
    which the segmenter does not count as the person."""
    gated = [r for r in rows if r["option"] is not None]
    best, lowest = max(r["iou"] for r in gated), min(r["error"] for r in gated)
    tied = [r for r in gated if r["iou"] >= best - IOU_TIE and r["error"] <= lowest + ERROR_TIE]
    return max(tied, key=lambda r: (r["option"][1], -r["option"][0]))["option"]


def label(option: tuple[float, float] | None) -> str:
    if option is None:
        return "no gate (MODNet alone)"
    served_option = option == (gate.THRESHOLD, gate.REACH)
    text = f"threshold {option[0]:g}, reach {option[1]:g}"
    return f"**{text} (served)**" if served_option else text


def table(title: str, rows: list[dict]) -> list[str]:
    lines = [f"### {title}", "", "| gate | mean IoU | worst IoU | mean alpha error |", "|---|---|---|---|"]
    lines += [f"| {label(r['option'])} | {r['iou']:.3f} | {r['worst']:.3f} | {r['error']:.4f} |" for r in rows]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=REPO / "model_repository",
                        help="the built model repository holding both models' ONNX files (default: %(default)s)")
    args = parser.parse_args(argv)
    found = {m.source.name: m for m in models(args.repository)}
    if missing := {PORTRAIT, PERSON} - set(found):
        raise SystemExit(f"{sorted(missing)} not built in {args.repository}: run `make models` first")
    grid = [None, *((t, r) for t in THRESHOLDS for r in REACHES)]
    tuning = tuning_set(TUNING_PLACEMENTS)
    lines = ["# The person gate on the portrait matte", "",
             f"Made by `python -m evaluation.gate` ({datetime.now(UTC):%Y-%m-%d}): MODNet's matte times the "
             "soft region near MediaPipe selfie segmentation's person (`imaging/person_gate.py`), refined as "
             "served, scored at 8 bits.", ""]
    tuned = measure(tuning, grid, found)
    lines += table(f"Tuning set ({len(tuning)} composites: the choice is made here)", tuned)
    choice, served_option = choose(tuned), (gate.THRESHOLD, gate.REACH)
    lines += [f"Chosen by the rule (of the gates within {IOU_TIE} of the best mean IoU and {ERROR_TIE} of the lowest "
              "alpha error, the widest reach, then the lowest threshold): threshold "
              f"{choice[0]:g}, reach {choice[1]:g}" + ("; served." if choice == served_option else
                                                         f"; NOT what is served ({served_option}): update "
                                                         "imaging/person_gate.py."), ""]
    evaluation = comp.composites("full")
    chosen = [None, served_option]
    lines += table(f"Evaluation composites ({len(evaluation)}: reported, not tuned on)",
                   measure(evaluation, chosen, found))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
