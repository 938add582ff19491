"""perf_analyzer (from the pinned tritonclient 2.51.0 wheel) against the live Triton, with a real JPEG."""

import base64
import struct

import pytest

from converters.catalog import load_catalog
from load_tests.perf_analyzer import input_data, run_perf_analyzer
from load_tests.photos import photo_jpeg
from stack.triton import TritonServer
from tests.conftest import MODEL_REPOSITORY

pytestmark = pytest.mark.integration


def test_perf_analyzer_measures_an_ensemble_on_a_real_jpeg(triton: TritonServer) -> None:
    photo = photo_jpeg("0.3MP")
    data = input_data("photo_mask_fast", photo, load_catalog(), MODEL_REPOSITORY)
    element = base64.b64decode(data["data"][0]["IMAGE"]["b64"])
    assert struct.unpack("<I", element[:4])[0] == len(photo) and element[4:] == photo
    result = run_perf_analyzer(f"127.0.0.1:{triton.ports.grpc}", "photo_mask_fast", data, concurrency=2, window_ms=1000)
    assert result.throughput > 0
    assert 0 < result.p50_ms <= result.p99_ms
