"""Each model's declared cpu runtime (converters/catalog.toml ``cpu_runtime``) is the one the committed
measurement chose (evaluation/runtime_results.json, ``python -m evaluation.runtimes``), every declared OpenVINO
runtime passed its quality gates there, and the cpu configs carry the declaration to the served step."""

import json
from pathlib import Path

import pytest

from converters.catalog import load_catalog
from converters.triton_config import model_config
from evaluation.runtimes import (
    IOU_TOLERANCE,
    MAX_MEAN_ABS_DIFF,
    MIN_PSNR_TO_FP32,
    MIN_SPEARMAN,
    MODELS,
    PSNR_TOLERANCE,
    REFERENCE,
    choose,
)

RESULTS = Path(__file__).resolve().parents[2] / "evaluation" / "runtime_results.json"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_every_model_of_the_cpu_target_was_measured_on_the_full_set(results: dict) -> None:
    assert set(results["models"]) == set(MODELS) and results["set"] == "full" and results["repeats"] >= 5
    assert results["gates"] == {"iou_tolerance": IOU_TOLERANCE, "max_mean_abs_diff": MAX_MEAN_ABS_DIFF,
                                "min_spearman": MIN_SPEARMAN, "psnr_tolerance": PSNR_TOLERANCE,
                                "min_psnr_to_fp32": MIN_PSNR_TO_FP32, "min_gain": results["gates"]["min_gain"]}


@pytest.mark.parametrize("name", MODELS)
def test_the_declared_runtime_is_the_measured_choice_and_passed_its_gates(results: dict, name: str) -> None:
    declared = load_catalog()[name].cpu_runtime
    measured = results["models"][name]
    assert declared == measured["chosen"], (f"[models.{name}] declares cpu_runtime {declared!r}, "
                                            f"evaluation/runtime_results.json chose {measured['chosen']!r}")
    assert measured["chosen"] == choose(measured["runtimes"])  # the recorded times give the recorded choice
    gates = measured["runtimes"][declared]["gates"]
    assert gates["passed"]
    if declared != REFERENCE:  # the gates themselves, not only the recorded verdict
        if "spearman_mean" in gates:
            assert gates["spearman_mean"] >= MIN_SPEARMAN
        elif "psnr" in gates:  # an upscaler
            assert abs(gates["psnr"] - gates["psnr_fp32"]) <= PSNR_TOLERANCE
            assert gates["min_psnr_to_fp32"] is None or gates["min_psnr_to_fp32"] >= MIN_PSNR_TO_FP32
        else:
            assert abs(gates["iou"] - gates["iou_fp32"]) <= IOU_TOLERANCE
            assert gates["mean_abs_diff"] <= MAX_MEAN_ABS_DIFF
        assert measured["runtimes"][declared]["median_ms"] < measured["runtimes"][REFERENCE]["median_ms"]


@pytest.mark.parametrize("name", MODELS)
def test_the_cpu_config_carries_the_declared_runtime_and_the_gpu_config_none(name: str) -> None:
    catalog = load_catalog()
    source = catalog[name]
    assert model_config(source, "cpu", catalog)["parameters"]["runtime"] == {"string_value": source.cpu_runtime}
    gpu = model_config(source, "gpu", catalog)
    if source.output == "rgb":  # a pixel model's step runs its network itself: on the gpu target, its default
        assert gpu["parameters"]["runtime"] == {"string_value": REFERENCE}
    else:
        assert "parameters" not in gpu



def timed(ms: float, passed: bool = True) -> dict:
    return {"median_ms": ms, "gates": {"passed": passed}}


def test_the_choice_is_the_fastest_that_passed_unless_a_more_exact_one_is_as_fast() -> None:
    assert choose({"onnxruntime": timed(9.0), "openvino-fp32": timed(6.0), "openvino-bf16": timed(3.0)}) == \
        "openvino-bf16"
    assert choose({"onnxruntime": timed(9.0), "openvino-fp32": timed(3.1), "openvino-bf16": timed(3.0)}) == \
        "openvino-fp32"  # within 5 %: the noise of a shared machine
    assert choose({"onnxruntime": timed(3.0), "openvino-fp32": timed(3.1), "openvino-bf16": timed(1.0, False)}) == \
        "onnxruntime"  # BF16 failed its gates
