"""The real Triton server with the real model repository: each step and each ensemble."""

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from contract.product import DEFAULT_LAYERS, PRODUCT, TENSORS
from stack.triton import TritonServer
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.integration

# Every ensemble of the product and its outputs, the image first.
ENSEMBLES = {e.name: list(e.operation.triton_outputs) for e in PRODUCT.ensembles()}
OPERATION = {e.name: e.operation.name for e in PRODUCT.ensembles()}


def _mask_png() -> bytes:
    mask = np.zeros((512, 400), np.uint8)
    mask[300:380, 40:120] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


# What a direct caller must add to the photo: one alternative of each one_of.
REQUIRED = {"background": {"COLOR": "1e90ff"}, "crop": {"ASPECT": "4:5"}, "erase": {"ERASE_MASK": _mask_png()},
            "select": {"POINT_X": 120, "POINT_Y": 330}}  # a tap on her suit
# The result of each operation for a 400x512 photo: PNG mode and size (upscale: of a 50x64 one, at scale 2;
# Real-ESRGAN and ESRGAN thick take seconds per tile on the CPU).
EXPECTED = {"depth": ("I;16", (400, 512)), "mask": ("L", (400, 512)), "cutout": ("RGBA", (400, 512)),
            "background": ("RGB", (400, 512)), "bokeh": ("RGB", (400, 512)), "adjust": ("RGB", (400, 512)),
            "crop": ("RGB", (400, 500)), "style": ("RGB", (400, 512)), "erase": ("RGB", (400, 512)),
            "upscale": ("RGB", (100, 128)), "select": ("L", (400, 512))}
SHRINK = {"upscale": 8}
TYPES = {int: ("INT32", np.int32), float: ("FP32", np.float32), str: ("BYTES", np.object_),
         bytes: ("BYTES", np.object_)}


@pytest.fixture(scope="module")
def client(triton: TritonServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{triton.ports.grpc}")


def photo_inputs(data: bytes, max_side: int | None = 0, **extra: object) -> list[grpcclient.InferInput]:
    """The photo, MAX_SIDE unless None (it is optional), and any other parameter tensors by name."""
    image = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[data]], dtype=np.object_))
    inputs = [image]
    for name, value in (({} if max_side is None else {"MAX_SIDE": max_side}) | extra).items():
        kind, dtype = TYPES[type(value)]
        tensor = grpcclient.InferInput(name, [1, 1], kind)
        tensor.set_data_from_numpy(np.array([[value.encode() if isinstance(value, str) else value]], dtype=dtype))
        inputs.append(tensor)
    return inputs


def infer(client, model: str, data: bytes, outputs: list[str], max_side: int | None = 0,
          **extra: object) -> dict[str, np.ndarray]:
    requested = [grpcclient.InferRequestedOutput(o) for o in outputs]
    result = client.infer(model, photo_inputs(data, max_side, **extra), outputs=requested)
    return {o: result.as_numpy(o) for o in outputs}


def png(array: np.ndarray) -> Image.Image:
    return Image.open(io.BytesIO(bytes(array.reshape(-1)[0])))


def test_every_model_is_ready(client) -> None:
    for model in ["preprocess", "postprocess", *PRODUCT.models(), *ENSEMBLES]:
        assert client.is_model_ready(model), model


@pytest.mark.parametrize("ensemble", sorted(ENSEMBLES))
def test_ensembles_answer_at_the_photo_size_with_only_the_photo_required(client, ensemble: str,
                                                                         astronaut: np.ndarray) -> None:
    operation = OPERATION[ensemble]
    step = SHRINK.get(operation, 1)
    photo = jpeg_bytes(astronaut[::step, :400:step])
    outputs = infer(client, ensemble, photo, ENSEMBLES[ensemble], max_side=None, **REQUIRED.get(operation, {}))
    if operation == "layers":
        body = json.loads(bytes(outputs["LAYERS_JSON"].reshape(-1)[0]))
        assert (body["width"], body["height"]) == (400, 512) and set(body["layers"]) == set(DEFAULT_LAYERS)
        return
    image = png(outputs[ENSEMBLES[ensemble][0]])
    assert (image.mode, image.size) == EXPECTED[operation]


def test_max_side_shrinks_the_outputs(client, astronaut: np.ndarray) -> None:
    outputs = infer(client, "photo_cutout_fast", jpeg_bytes(astronaut[:, :400]), ["CUTOUT_IMAGE"], max_side=128)
    assert png(outputs["CUTOUT_IMAGE"]).size == (100, 128)


def test_preprocess_computes_only_requested_outputs(client, astronaut: np.ndarray) -> None:
    wanted = ["OUTPUT_SIZE", TENSORS.model_input("depth")]
    outputs = infer(client, "preprocess", jpeg_bytes(astronaut), wanted)
    assert outputs["OUTPUT_SIZE"].tolist() == [[512, 512]]
    assert outputs["DEPTH_INPUT"].shape == (1, 3, 224, 224)
    assert 0.0 <= outputs["DEPTH_INPUT"].min() and outputs["DEPTH_INPUT"].max() <= 1.0


def test_model_step_runs_a_batch(client) -> None:
    batch = np.random.default_rng(0).random((4, 3, 224, 224), dtype=np.float32)
    tensor = grpcclient.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    depth = client.infer("depth", [tensor]).as_numpy("depth")
    assert depth.shape == (4, 1, 224, 224) and np.isfinite(depth).all()


def test_concurrent_requests_are_all_answered_alike(client, triton: TritonServer, astronaut: np.ndarray) -> None:
    data = jpeg_bytes(astronaut)
    before = client.get_inference_statistics("matte_fast", headers=triton.admin_headers).model_stats[0]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: infer(client, "photo_mask_fast", data, ["MASK_IMAGE"]), range(16)))
    masks = [np.asarray(png(r["MASK_IMAGE"])) for r in results]
    assert all(np.array_equal(masks[0], m) for m in masks)
    after = client.get_inference_statistics("matte_fast", headers=triton.admin_headers).model_stats[0]
    assert after.inference_count - before.inference_count == 16


def test_requests_queued_behind_a_running_batch_are_batched_together(client, triton: TritonServer) -> None:
    """Nine requests sent at once to a slow model (U2-Netp): while the first executes, the rest queue and
    the dynamic batcher runs them as one batch of up to eight."""
    model = "matte_object_lite"
    tensor = grpcclient.InferInput("image", [1, 3, 320, 320], "FP32")
    tensor.set_data_from_numpy(np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32))
    before = client.get_inference_statistics(model, headers=triton.admin_headers).model_stats[0]
    done: list[object] = []
    for _ in range(9):
        client.async_infer(model, [tensor], callback=lambda result, error: done.append(error or result))
    deadline = time.monotonic() + 60
    while len(done) < 9:
        assert time.monotonic() < deadline, "requests were not answered"
        time.sleep(0.01)
    assert not [r for r in done if isinstance(r, InferenceServerException)]
    after = client.get_inference_statistics(model, headers=triton.admin_headers).model_stats[0]
    assert after.inference_count - before.inference_count == 9
    assert after.execution_count - before.execution_count <= 3
    assert max(stat.batch_size for stat in after.batch_stats) >= 4


def test_undecodable_image_is_an_invalid_argument_and_the_server_keeps_serving(client, astronaut: np.ndarray) -> None:
    data = jpeg_bytes(astronaut)
    with pytest.raises(InferenceServerException, match="corrupt or truncated") as caught:
        infer(client, "photo_depth_portrait", data[: len(data) // 2], ["DEPTH_IMAGE"])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="not a readable"):
        infer(client, "photo_depth_portrait", b"GIF89a not supported", ["DEPTH_IMAGE"])
    assert png(infer(client, "photo_depth_portrait", data, ["DEPTH_IMAGE"])["DEPTH_IMAGE"]).size == (512, 512)


def test_exif_rotation_is_applied_in_the_ensemble(client, astronaut: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # viewers rotate the stored pixels 90 degrees counter-clockwise
    stored = np.ascontiguousarray(np.rot90(astronaut[:, :384], k=-1))  # 384 high, 512 wide
    mask = png(infer(client, "photo_mask_portrait", jpeg_bytes(stored, exif=exif), ["MASK_IMAGE"])["MASK_IMAGE"])
    upright = png(infer(client, "photo_mask_portrait", jpeg_bytes(astronaut[:, :384]), ["MASK_IMAGE"])["MASK_IMAGE"])
    assert mask.size == upright.size == (384, 512)
    assert np.abs(np.asarray(mask, np.int16) - np.asarray(upright, np.int16)).mean() < 3


def test_the_protocols_the_gateway_never_needs_are_refused_without_the_admin_header(
        client, triton: TritonServer) -> None:
    """Shared-memory registration (the 2025 python-backend exploit chain used it), the model repository and
    statistics are restricted, as in the chart; health, metadata and inference are not."""
    for call in (lambda **h: client.register_system_shared_memory("probe", "/probe", 64, **h),
                 lambda **h: client.get_model_repository_index(**h),
                 lambda **h: client.unload_model("photo_depth_portrait", **h),
                 lambda **h: client.get_inference_statistics("photo_depth_portrait", **h)):
        with pytest.raises(InferenceServerException) as refused:
            call()
        assert "protocol is restricted" in refused.value.message()
    assert client.get_model_repository_index(headers=triton.admin_headers).models
    assert client.is_server_ready() and client.is_model_ready("photo_depth_portrait")
    assert client.get_model_metadata("photo_depth_portrait").name == "photo_depth_portrait"
