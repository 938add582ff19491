"""The two baselines: the models alone in ONNX Runtime, and the naive app as a real uvicorn process."""

import asyncio
import io

import pytest
from PIL import Image

from converters.catalog import load_catalog
from imaging.geometry import output_size
from load_tests.closed_loop import HttpTarget, run_closed_loop
from load_tests.http_client import HttpConnection, HttpResponse
from load_tests.model_limit import BATCH_SIZES, best, measure_model
from load_tests.naive_app import InlineModel, serve_inline
from load_tests.operations import OPERATIONS
from load_tests.photos import SIZES, photo_jpeg
from load_tests.services import running_naive_app
from tests.conftest import MODEL_REPOSITORY

pytestmark = pytest.mark.integration


async def post(port: int, path: str, body: bytes) -> HttpResponse:
    connection = HttpConnection("127.0.0.1", port)
    try:
        return await connection.post(path, body, {"Content-Type": "image/jpeg"})
    finally:
        await connection.close()


def test_naive_app_serves_the_same_outputs_and_sustains_load() -> None:
    photo = photo_jpeg("0.3MP")
    size = output_size(SIZES["0.3MP"], 0)
    model = InlineModel.load(load_catalog()["segmentation_fast"], MODEL_REPOSITORY)
    expected, _ = serve_inline(model, photo, 0, "cutout")
    with running_naive_app() as naive:
        answer = asyncio.run(post(naive.port, "/v1/cutout?model=fast", photo))
        assert answer.status == 200 and answer.body == expected
        depth = asyncio.run(post(naive.port, "/v1/depth?max_side=320", photo))
        assert Image.open(io.BytesIO(depth.body)).size == (320, 240)
        assert float(depth.headers["x-depth-near"]) <= float(depth.headers["x-depth-far"])
        assert asyncio.run(post(naive.port, "/v1/mask", b"not a photo")).status == 422
        target = HttpTarget(naive.port, OPERATIONS["mask_fast"], photo, size)
        result = asyncio.run(run_closed_loop(target, concurrency=2, duration_s=1.0, warmup_s=0.2))
    assert result.errors == 0, result.first_error
    assert result.throughput > 0


def test_model_limit_covers_every_layout_and_batch_size() -> None:
    source = load_catalog()["segmentation_fast"]
    points = measure_model(source, MODEL_REPOSITORY / source.name / "1" / "model.onnx", photo_jpeg("0.3MP"),
                           duration_s=0.05)
    assert {(p.layout, p.batch) for p in points} == {
        (layout, batch) for layout in ("1 session x 2 threads", "2 sessions x 1 thread") for batch in BATCH_SIZES}
    assert all(p.images_per_s > 0 for p in points)
    assert best(points).images_per_s == max(p.images_per_s for p in points)
