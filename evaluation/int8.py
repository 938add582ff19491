"""``python -m evaluation.int8 MODEL``: post-training INT8 of a served matte model (nncf, OpenVINO), timed and gated.

Not served yet: it measures whether INT8 can pass the gates of ``evaluation.runtimes`` and what it would save.
nncf is not a dependency of the service; run this with it on the path, e.g.
``python -m venv /tmp/nncf && /tmp/nncf/bin/pip install nncf==3.4.0`` then
``PYTHONPATH=/tmp/nncf/lib/python3.11/site-packages .venv/bin/python -m evaluation.int8 matte_portrait``.

- Calibration and accuracy control on the tuning set (``evaluation.refinement.tuning_set``, 3 placements: 30
  composites): nncf's ``quantize_with_accuracy_control`` with the metric 1 - mean |INT8 - FP32| of the model's
  matte, reverting operations to floating point until the drop is at most ``--max-drop``.
- Gates on the evaluation composites, as ``evaluation.runtimes`` gates BF16: IoU of the served matte within
  0.005 of FP32's and mean absolute difference from ONNX Runtime FP32's matte <= 0.01.
- Time: the served OpenVINO settings (``triton_models.runtime.open_session``, 2 threads) for the FP32 ONNX file
  and the INT8 IR, interleaved rounds, medians.

Prints a markdown report (evaluation/int8_results.md is made from it); the INT8 IR is written to ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from converters.catalog import load_catalog
from evaluation import composites as comp
from evaluation.__main__ import machine
from evaluation.refinement import tuning_set
from evaluation.runtimes import MODEL_REPOSITORY, THREADS, matte_gate, run, tensor, timings
from triton_models.runtime import ONNXRUNTIME, OPENVINO_FP32, open_session

TUNING_PLACEMENTS = 3
REPEATS = 7


def quantize(onnx_path: Path, calibration: list[np.ndarray], max_drop: float):  # noqa: ANN201 - an openvino.Model
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise SystemExit(f"{exc}: put nncf 3.4.0 on the path (see this module's docstring)") from exc
    model = ov.Core().read_model(str(onnx_path))
    fp32 = open_session(onnx_path, OPENVINO_FP32, THREADS, spinning=False)
    reference = [run(fp32, x) for x in calibration]

    def metric(compiled, indices) -> float:  # noqa: ANN001 - nncf's callback
        return 1.0 - float(np.mean([np.abs(compiled(calibration[i])[0][0, 0] - reference[i]).mean() for i in indices]))

    return nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(calibration), nncf.Dataset(list(range(len(calibration)))), metric, max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration), preset=nncf.QuantizationPreset.MIXED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.int8", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=[name for name, s in load_catalog().items() if s.output == "alpha"])
    parser.add_argument("--max-drop", type=float, default=0.003,
                        help="largest mean |INT8 - FP32| accepted on the tuning set (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("build/int8"), help="where the INT8 IR is written")
    args = parser.parse_args(argv)
    source = load_catalog()[args.model]
    onnx_path = MODEL_REPOSITORY / args.model / "1" / "model.onnx"
    if not onnx_path.exists():
        raise SystemExit(f"{onnx_path} is missing: run `make models` first")
    tuning = tuning_set(TUNING_PLACEMENTS)
    quantized = quantize(onnx_path, [tensor(source, c.image) for c in tuning], args.max_drop)
    import openvino as ov

    args.out.mkdir(parents=True, exist_ok=True)
    ir_path = args.out / f"{args.model}_int8.xml"
    ov.save_model(quantized, str(ir_path))
    fake_quantize = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())
    sessions = {"onnxruntime FP32": open_session(onnx_path, ONNXRUNTIME, THREADS, spinning=False),
                "openvino FP32 (served)": open_session(onnx_path, OPENVINO_FP32, THREADS, spinning=False),
                f"openvino INT8 (max drop {args.max_drop:g})": open_session(ir_path, OPENVINO_FP32, THREADS,
                                                                             spinning=False)}
    items = comp.composites("full")
    inputs = [tensor(source, c.image) for c in items]
    rounds = timings(sessions, inputs[0], REPEATS)
    outputs = {name: [run(session, x) for x in inputs] for name, session in sessions.items()}
    reference = outputs["onnxruntime FP32"]
    reference_iou, host = matte_gate(items, reference, reference, 0.0)["iou"], machine()
    lines = [f"# INT8 for {args.model}", "",
             f"Made by `python -m evaluation.int8 {args.model} --max-drop {args.max_drop:g}` "
             f"({datetime.now(UTC):%Y-%m-%d}); nncf accuracy control on {len(tuning)} "
             f"tuning composites, gates on {len(items)} evaluation composites; the INT8 model keeps "
             f"{fake_quantize} FakeQuantize operations. Machine: {host.get('cpu_model')}, {host['nproc']} cores, "
             f"AMX {host.get('amx') or 'none'}.", "",
             "| model | ms (median) | IoU | IoU FP32 | mean abs diff | gates |", "|---|---|---|---|---|---|"]
    for name in sessions:
        gate = matte_gate(items, outputs[name], reference, reference_iou)
        verdict = "pass" if gate["passed"] else "**fail**"
        lines.append(f"| {name} | {statistics.median(rounds[name]):.1f} | {gate['iou']:.4f} | "
                     f"{gate['iou_fp32']:.4f} | {gate['mean_abs_diff']:.4f} | {verdict} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
