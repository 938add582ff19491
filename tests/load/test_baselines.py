"""The two baselines: the models alone in ONNX Runtime, and the naive app as a real uvicorn process."""

import asyncio
import io
import urllib.error
import urllib.request

import pytest
from PIL import Image

from contract.product import PRODUCT
from converters.catalog import load_catalog
from imaging.geometry import output_size
from load_tests.bench import best_limits
from load_tests.closed_loop import HttpTarget, run_closed_loop
from load_tests.naive_app import InlineModel, serve_inline
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


def test_naive_app_serves_every_operation_as_checked_and_sustains_load() -> None:
    photo, size = photo_jpeg("0.3MP"), output_size(SIZES["0.3MP"], 0)
    cutout = [op for op in OPERATIONS.values() if op.http_path.startswith(PRODUCT.path(PRODUCT.operation("cutout")))]
    models = {name: InlineModel.load(source) for name, source in load_catalog().items()}
    expected, _ = serve_inline(models, photo, 0, PRODUCT.operation("cutout"), cutout[-1].name.split("_", 1)[1])
    with running_naive_app() as naive:
        for operation in OPERATIONS.values():  # each answer checked: status, PNG kind and size, header outputs
            run = asyncio.run(run_closed_loop(HttpTarget(naive.port, operation, photo, size), 1, 0.01, 0.0, 0))
            assert run.completed > 0 and run.errors == 0, (operation.name, run.first_error)
        assert post(naive.port, cutout[-1].http_path, photo) == (200, expected)  # the variant's own model
        status, depth = post(naive.port, "/v1/depth?max_side=320", photo)
        assert status == 200 and Image.open(io.BytesIO(depth)).size == (320, 240)
        assert post(naive.port, "/v1/mask?model=none", photo)[0] == 400
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
