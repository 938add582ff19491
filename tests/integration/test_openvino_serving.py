"""The real Triton serving catalog models through OpenVINO (triton_models/runtime.py), checked against ONNX
Runtime FP32 on a real photo within the runtime gates (evaluation/runtimes.py); a model OpenVINO cannot read
fails its own load with a line that says what to do, and the others keep serving."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from scipy.stats import spearmanr

from converters.catalog import ModelSource, load_catalog
from converters.triton_config import MODEL_INPUT, model_config, python_model_file, to_pbtxt
from evaluation.metrics import iou
from evaluation.runtimes import IOU_TOLERANCE, MAX_MEAN_ABS_DIFF, MIN_SPEARMAN
from imaging.matte import refine
from imaging.outputs import matte_to_uint8
from imaging.tensors import model_input
from stack.ports import free_port
from stack.triton import TritonPorts, TritonServer
from triton_models.runtime import ONNXRUNTIME, OPENVINO_BF16, OPENVINO_FP32, open_session

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "model_repository"
ASTRONAUT_ALPHA = REPO / "evaluation" / "data" / "astronaut_alpha_ref.png"
# Served here through OpenVINO whatever the catalog declares: both precisions.
SERVED = {"depth": OPENVINO_BF16, "matte_portrait": OPENVINO_FP32}
BROKEN = "matte_unreadable"


def add_model(repository: Path, source: ModelSource, model: bytes) -> None:
    config = model_config(source, "cpu")
    directory = repository / source.name
    (directory / "1").mkdir(parents=True)
    (directory / "config.pbtxt").write_text(to_pbtxt(config))
    (directory / "1" / "model.py").write_text(python_model_file(source.name, config))
    (directory / "1" / "model.onnx").write_bytes(model)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    catalog = load_catalog()
    repository = tmp_path_factory.mktemp("openvino_repository")
    for name, runtime in SERVED.items():
        built = BUILT / name / "1" / "model.onnx"
        if not built.exists():
            pytest.fail(f"{built} is not built: run `make models`")
        add_model(repository, replace(catalog[name], cpu_runtime=runtime), built.read_bytes())
    add_model(repository, replace(catalog["matte_fast"], name=BROKEN, cpu_runtime=OPENVINO_BF16),
              b"\x08\x07not an ONNX model" * 8)
    ports = TritonPorts(free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp("triton") / "triton.log"
    with TritonServer(repository, ports, log_path=log) as triton:
        yield triton


@pytest.fixture(scope="module")
def client(server: TritonServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.ports.grpc}")


def served_and_reference(client: grpcclient.InferenceServerClient, name: str,
                         photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's output for ``photo`` through Triton (OpenVINO) and from ONNX Runtime FP32 directly."""
    source = load_catalog()[name]
    height, width = source.input_size
    batch = model_input(Image.fromarray(photo), height, width, source.normalization)[np.newaxis]
    tensor = grpcclient.InferInput(MODEL_INPUT, list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    served = client.infer(name, [tensor]).as_numpy(source.output)
    (reference,) = open_session(BUILT / name / "1" / "model.onnx", ONNXRUNTIME, 2, False).run({MODEL_INPUT: batch})
    assert served.shape == reference.shape == (1, 1, height, width)
    return served[0, 0], reference[0, 0]


def test_depth_in_openvino_bf16_ranks_the_photo_as_onnxruntime_does(client, astronaut: np.ndarray) -> None:
    served, reference = served_and_reference(client, "depth", astronaut)
    assert spearmanr(served.ravel(), reference.ravel()).statistic >= MIN_SPEARMAN
    assert not np.array_equal(served, reference)  # computed by another runtime, not a copy of the reference


def test_portrait_matte_in_openvino_matches_onnxruntime_within_the_gate(client, astronaut: np.ndarray) -> None:
    served, reference = served_and_reference(client, "matte_portrait", astronaut)
    truth = np.asarray(Image.open(ASTRONAUT_ALPHA).convert("L"), dtype=np.float32) / 255.0

    def served_iou(matte: np.ndarray) -> float:
        return iou(matte_to_uint8(refine(matte, astronaut)) / 255.0, truth)

    assert float(np.abs(served - reference).mean()) <= MAX_MEAN_ABS_DIFF
    assert abs(served_iou(served) - served_iou(reference)) <= IOU_TOLERANCE
    assert served_iou(served) > 0.9  # the person found: the check compares two real mattes


def test_a_model_openvino_cannot_read_fails_alone_and_says_what_to_do(client, server: TritonServer) -> None:
    assert client.is_server_ready()
    assert all(client.is_model_ready(name) for name in SERVED)
    assert not client.is_model_ready(BROKEN)
    log = server.log_path.read_text(errors="replace").replace('\\"', '"')  # Triton escapes quotes in messages
    lines = [line for line in log.splitlines() if f"model '{BROKEN}'" in line and "'openvino-bf16'" in line]
    assert any('declare cpu_runtime = "onnxruntime" for it in converters/catalog.toml' in line for line in lines), \
        log[-3000:]
