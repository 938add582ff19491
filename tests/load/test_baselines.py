"""The two baselines: the models alone in ONNX Runtime, and the naive app as a real uvicorn process."""

import asyncio
import io
import json
import urllib.error
import urllib.request

import pytest
import skimage.data
from PIL import Image

from contract.product import PRODUCT
from converters.catalog import load_catalog
from imaging.geometry import output_size
from load_tests.bench import best_limits
from load_tests.closed_loop import HttpTarget, run_closed_loop
from load_tests.naive_app import NAIVE_OPERATIONS, Inline, serve_inline
from load_tests.offline import model_limit
from load_tests.operations import OPERATIONS
from load_tests.services import running_naive_app
from load_tests.traffic_mix import SIZES, photo_jpeg
from tests.conftest import MODEL_REPOSITORY

pytestmark = pytest.mark.integration


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, {"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def jpeg(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_naive_auto_chooses_the_matte_by_the_faces_found_as_the_ensemble_does() -> None:
    inline, mask = Inline.load(), PRODUCT.operation("mask")
    for photo, subject, faces, fixed in ((photo_jpeg("0.3MP"), "person", "1", "portrait"),  # the astronaut
                                         (jpeg(skimage.data.coffee()), "object", "0", "object")):  # a cup, no face
        auto, headers = serve_inline(inline, photo, 0, mask, "auto")
        assert (headers["X-Subject"], headers["X-Faces"]) == (subject, faces)
        assert auto == serve_inline(inline, photo, 0, mask, fixed)[0]  # the chosen matte, computed as its variant's
    assert serve_inline(inline, photo_jpeg("0.3MP"), 0, mask, "object")[1]["X-Subject"] == "object"  # a fixed one's


def test_naive_app_serves_every_operation_as_checked_and_sustains_load() -> None:
    photo, size = photo_jpeg("0.3MP"), output_size(SIZES["0.3MP"], 0)
    cutout = [op for op in OPERATIONS.values() if op.http_path.startswith(PRODUCT.path(PRODUCT.operation("cutout")))]
    expected, _ = serve_inline(Inline.load(), photo, 0, PRODUCT.operation("cutout"), cutout[-1].name.split("_", 1)[1])
    assert {"depth", "mask", "cutout", "layers"} <= {op.name for op in NAIVE_OPERATIONS}
    with running_naive_app() as naive:
        for operation in OPERATIONS.values():  # each answer checked: status, PNG kind and size, header outputs
            run = asyncio.run(run_closed_loop(HttpTarget(naive.port, operation, photo, size), 1, 0.01, 0.0, 0))
            assert run.completed > 0 and run.errors == 0, (operation.name, run.first_error)
        assert post(naive.port, cutout[-1].http_path, photo) == (200, expected)  # the variant's own model
        status, depth = post(naive.port, "/v1/depth?max_side=320", photo)
        assert status == 200 and Image.open(io.BytesIO(depth)).size == (320, 240)
        status, layers = post(naive.port, "/v1/layers?max_side=320", photo)
        assert status == 200 and json.loads(layers)["width"] == 320
        status, refused = post(naive.port, "/v1/mask?model=none", photo)
        assert status == 400 and "must be one of auto, fast" in refused.decode()
        assert post(naive.port, "/v1/upscale", photo)[0] == 404  # a pixel model: not served inline
        assert post(naive.port, cutout[0].http_path, b"not a photo")[0] == 422
        result = asyncio.run(run_closed_loop(HttpTarget(naive.port, cutout[0], photo, size), concurrency=2,
                                             duration_s=1.0, warmup_s=0.2))
    assert result.errors == 0, result.first_error
    assert result.throughput > 0


def test_model_limit_covers_every_layout_and_batch_size() -> None:
    source = load_catalog()[next(iter(OPERATIONS.values())).model]
    rows = model_limit(source, MODEL_REPOSITORY / source.name / "1" / "model.onnx", photo_jpeg("0.3MP"),
                       duration_s=0.05, batch_sizes=(1, 2))
    assert [row["layout"] for row in rows] == ["1 session x 2 threads", "2 sessions x 1 thread"]
    assert all(row[f"b{b}"] > 0 for row in rows for b in (1, 2))
    best = best_limits(rows)[source.name]
    assert best["images_per_s"] == max(row[f"b{b}"] for row in rows for b in (1, 2))
    assert best["ms"] == pytest.approx(1e3 / best["images_per_s"])
