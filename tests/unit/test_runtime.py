"""triton_models/runtime.py: the precision from the CPU's flags, refusals that say what to do, and the real
runtimes on the built FastDepth model (OpenVINO FP32 equals ONNX Runtime; threads and no spin-waiting)."""

import re
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from converters.catalog import CATALOG_PATH, parse_catalog
from converters.errors import CatalogError
from imaging.tensors import model_input
from triton_models import runtime
from triton_models.runtime import (
    ONNXRUNTIME,
    OPENVINO_BF16,
    OPENVINO_FP32,
    RUNTIMES,
    RuntimeChoiceError,
    bf16_supported,
    cpu_flags,
    open_session,
    precision_for,
)

REPO = Path(__file__).resolve().parents[2]
DEPTH = REPO / "model_repository" / "depth" / "1" / "model.onnx"
# /proc/cpuinfo of two processors, abridged: the flags are read from the first.
SAPPHIRE_RAPIDS = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu sse2 avx2 avx512f " \
                  "avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n\nprocessor\t: 1\nflags\t\t: fpu\n"
ZEN4 = "processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n"
ICE_LAKE = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"
GRAVITON = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd bf16 sve\n"


@pytest.mark.parametrize(("cpuinfo", "bf16"), [(SAPPHIRE_RAPIDS, True), (ZEN4, True), (ICE_LAKE, False),
                                               (GRAVITON, False), ("", False)])
def test_bf16_only_on_a_cpu_with_amx_or_avx512_bf16(cpuinfo: str, bf16: bool) -> None:
    flags = cpu_flags(cpuinfo)
    assert bf16_supported(flags) is bf16
    assert precision_for(OPENVINO_BF16, flags) == ("bf16" if bf16 else "f32")
    assert precision_for(OPENVINO_FP32, flags) == "f32"  # asked for: the plugin's own default is BF16 where it can
    assert precision_for(ONNXRUNTIME, flags) is None


def test_the_flags_are_the_first_processors() -> None:
    assert "amx_bf16" in cpu_flags(SAPPHIRE_RAPIDS) and "fpu" in cpu_flags(SAPPHIRE_RAPIDS)
    assert cpu_flags(GRAVITON) == {"fp", "asimd", "bf16", "sve"}


def test_a_cpu_without_bf16_is_said_once_per_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(ICE_LAKE)
    monkeypatch.setattr(runtime, "CPUINFO", cpuinfo)
    runtime.host_flags.cache_clear()
    try:
        assert not bf16_supported(runtime.host_flags()) and not bf16_supported(runtime.host_flags())
    finally:
        runtime.host_flags.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.name == runtime.__name__]
    assert len(warnings) == 1 and "run in FP32" in warnings[0] and "openvino-bf16" in warnings[0]


def test_an_unknown_runtime_is_refused_with_the_choices() -> None:
    with pytest.raises(RuntimeChoiceError, match=r"unknown runtime 'tensorrt'; choose one of \['onnxruntime', "
                                                 r"'openvino-fp32', 'openvino-bf16'\]"):
        open_session(DEPTH, "tensorrt", threads=1, spinning=False)


def test_the_catalog_refuses_an_unknown_cpu_runtime() -> None:
    declared = re.sub(r"^cpu_runtime = .*\n", "", CATALOG_PATH.read_text(), flags=re.MULTILINE)
    text = declared.replace('output = "depth"\n', 'output = "depth"\ncpu_runtime = "int4"\n', 1)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    assert f"[models.depth]: cpu_runtime = 'int4', expected one of {list(RUNTIMES)}" in str(caught.value)


def test_a_model_openvino_cannot_read_names_the_file_the_runtime_and_the_fix(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"\x08\x07not a protobuf" * 10)
    with pytest.raises(RuntimeChoiceError) as caught:
        open_session(broken, OPENVINO_BF16, threads=1, spinning=False)
    message = str(caught.value)
    assert str(broken) in message and "'openvino-bf16'" in message and "Exception from" not in message
    assert 'declare cpu_runtime = "onnxruntime" for it in converters/catalog.toml' in message


def test_openvino_refuses_a_spin_wait_it_cannot_honour() -> None:
    with pytest.raises(RuntimeChoiceError, match="no spin-wait setting.*spinning=False"):
        open_session(DEPTH, OPENVINO_FP32, threads=1, spinning=True)


@pytest.fixture(scope="module")
def photo_batch() -> np.ndarray:
    """Three real photos as FastDepth's input (224 x 224, unit normalisation)."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    return np.stack([model_input(Image.fromarray(p), 224, 224, "unit") for p in photos])


def built() -> None:
    if not DEPTH.exists():
        pytest.fail(f"{DEPTH} is not built: run `make models`")


@pytest.mark.parametrize("name", RUNTIMES)
def test_every_runtime_has_the_served_tensors_and_runs_a_batch(name: str, photo_batch: np.ndarray) -> None:
    built()
    session = open_session(DEPTH, name, threads=1, spinning=False)
    assert (session.input_names, session.output_names) == (["image"], ["depth"])
    (depth,) = session.run({"image": photo_batch})
    assert depth.shape == (3, 1, 224, 224) and depth.dtype == np.float32
    (first,) = session.run({"image": photo_batch[:1]})
    np.testing.assert_allclose(first, depth[:1], rtol=1e-6, atol=1e-6)  # a batch is its rows


def test_openvino_fp32_computes_what_onnxruntime_does(photo_batch: np.ndarray) -> None:
    built()
    (reference,) = open_session(DEPTH, ONNXRUNTIME, threads=2, spinning=False).run({"image": photo_batch})
    (fp32,) = open_session(DEPTH, OPENVINO_FP32, threads=2, spinning=False).run({"image": photo_batch})
    np.testing.assert_allclose(fp32, reference, rtol=1e-4, atol=1e-4)


def test_openvino_is_compiled_with_the_threads_and_precision_asked_for() -> None:
    built()
    compiled = open_session(DEPTH, OPENVINO_FP32, threads=1, spinning=False).request.get_compiled_model()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    assert compiled.get_property("ENABLE_CPU_PINNING") is False


def idle_cpu_seconds(name: str, spinning: bool, batch: np.ndarray) -> float:
    """CPU seconds this process spends in the 50 ms after each of 5 runs, while the caller sleeps."""
    session = open_session(DEPTH, name, threads=2, spinning=spinning)
    session.run({"image": batch})
    idle = 0.0
    for _ in range(5):
        session.run({"image": batch})
        started = time.process_time()
        time.sleep(0.05)
        idle += time.process_time() - started
    return idle


@pytest.mark.parametrize("name", RUNTIMES)
def test_no_runtime_spin_waits_between_runs(name: str, photo_batch: np.ndarray) -> None:
    """An idle pool that spin-waits holds the cores the decode and encode steps need. (Measured here: ONNX
    Runtime spinning ~0.085 s, not spinning 0.0004 s; OpenVINO 0.003 s.)"""
    built()
    assert idle_cpu_seconds(name, False, photo_batch[:1]) < 0.02


def test_the_idle_measurement_sees_a_spinning_pool(photo_batch: np.ndarray) -> None:
    built()
    assert idle_cpu_seconds(ONNXRUNTIME, True, photo_batch[:1]) > 0.02
