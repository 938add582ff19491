"""End to end through the gateway on real photos."""

import io

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from contract.product import PRODUCT
from converters.catalog import get_source
from imaging.tensors import model_input
from tests.conftest import MODEL_REPOSITORY, jpeg_bytes

pytestmark = pytest.mark.e2e

# In the 512x512 astronaut portrait: her torso, and the wall behind her on the right.
PERSON = (slice(256, 448), slice(96, 288))
BACKDROP = (slice(0, 256), slice(352, 512))


def post(http: httpx.Client, route: str, data: bytes, **params: str | int) -> tuple[np.ndarray, httpx.Response]:
    response = http.post(route, content=data, params=params, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content))), response


def direct_alpha(photo: np.ndarray, model: str) -> np.ndarray:
    """The same ONNX model run directly, outside Triton, resized back like the service."""
    source = get_source(model)
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    tensor = model_input(Image.fromarray(photo), *source.input_size, source.normalization)
    alpha = session.run(None, {"image": tensor[np.newaxis]})[0][0, 0]
    return np.asarray(Image.fromarray(alpha).resize(photo.shape[1::-1], Image.Resampling.BILINEAR))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("model", PRODUCT.operation("mask").variant_names)
def test_mask_matches_the_model_run_directly_and_covers_the_person(http, astronaut, model: str) -> None:
    mask, _ = post(http, "/v1/mask", jpeg_bytes(astronaut, quality=95), model=model)
    assert mask.shape == (512, 512) and mask.dtype == np.uint8
    served = mask >= 128
    direct = direct_alpha(astronaut, PRODUCT.operation("mask").variant(model).models[0]) >= 0.5
    assert iou(served, direct) >= 0.95
    assert served[PERSON].mean() > 0.95
    assert served[BACKDROP].mean() < 0.05


def test_depth_puts_the_person_nearer_than_the_backdrop(http, astronaut) -> None:
    depth, response = post(http, "/v1/depth", jpeg_bytes(astronaut))
    assert depth.shape == (512, 512) and depth.dtype == np.uint16  # 16-bit PNG
    assert depth[PERSON].mean() > depth[BACKDROP].mean() + 10000  # near = bright
    near, far = float(response.headers["X-Depth-Near"]), float(response.headers["X-Depth-Far"])
    assert 0 < near < far


@pytest.mark.parametrize("model", ["fast", "portrait"])  # the person variants
def test_cutout_is_rgba_with_the_person_opaque(http, astronaut, model: str) -> None:
    cutout, _ = post(http, "/v1/cutout", jpeg_bytes(astronaut), model=model, max_side=256)
    assert cutout.shape == (256, 256, 4)
    half = (slice(s.start // 2, s.stop // 2) for s in PERSON)
    person = cutout[tuple(half)]
    assert (person[..., 3] > 200).mean() > 0.95
    back = cutout[tuple(slice(s.start // 2, s.stop // 2) for s in BACKDROP)]
    assert (back[..., 3] < 30).mean() > 0.95


def test_multipart_upload(http, astronaut) -> None:
    response = http.post("/v1/mask", files={"image": ("me.jpg", jpeg_bytes(astronaut), "image/jpeg")})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (512, 512)


def test_exif_rotated_photo_gives_rotated_output(http, astronaut) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate the stored pixels 90 degrees clockwise
    upright = astronaut[:, :384]
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    rotated, _ = post(http, "/v1/mask", jpeg_bytes(stored, exif=exif))
    plain, _ = post(http, "/v1/mask", jpeg_bytes(upright))
    assert rotated.shape == plain.shape == (512, 384)
    assert iou(rotated >= 128, plain >= 128) >= 0.95


def test_bad_inputs_get_4xx_and_the_stack_keeps_serving(http, astronaut) -> None:
    photo = jpeg_bytes(astronaut)
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="PNG")
    png = buffer.getvalue()
    start = png.index(b"IDAT") + 100
    corrupt_png = png[:start] + bytes(500) + png[start + 500 :]  # headers fine: only the decoder notices
    cases = [
        (b"", "image/jpeg", 422, "empty_body"),
        (b"not an image", "image/jpeg", 415, "unsupported_format"),
        (photo[: len(photo) // 2], "image/jpeg", 422, "truncated_image"),
        (corrupt_png, "image/png", 422, "undecodable_image"),
    ]
    for body, media_type, status, code in cases:
        response = http.post("/v1/cutout", content=body, headers={"Content-Type": media_type})
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert http.get("/readyz").status_code == 200
    post(http, "/v1/depth", photo)


def test_metrics_move_with_real_requests(http, astronaut) -> None:
    def value(text: str, line_start: str) -> float:
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)), 0.0)

    before = http.get("/metrics").text
    post(http, "/v1/mask", jpeg_bytes(astronaut))
    after = http.get("/metrics").text
    ok = 'gateway_requests_total{route="mask",status_class="2xx"}'
    assert value(after, ok) == value(before, ok) + 1
    count = 'gateway_triton_duration_seconds_count{route="mask"}'
    assert value(after, count) == value(before, count) + 1
    response_bytes = 'gateway_response_bytes_total{route="mask"}'
    assert value(after, response_bytes) > value(before, response_bytes)
