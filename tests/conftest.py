"""Shared fixtures: real photos, free ports, and the real Triton server."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from stack.triton import TritonPorts, TritonServer

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg_bytes(rgb: np.ndarray, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, exif=exif or Image.Exif())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real portrait, 512x512 RGB: the person fills the lower centre."""
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def photos(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    return {"astronaut": astronaut, "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea()}


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """The real tritonserver on free ports, serving the built model repository."""
    missing = sorted(p.parent.parent.name for p in MODEL_REPOSITORY.glob("*/1/model.py")
                     if not (p.parent / "model.onnx").exists() and p.parent.parent.name not in ("preprocess", "postprocess"))
    if missing:
        pytest.fail(f"models not built: {missing}; run `make models` (make test does it)")
    ports = TritonPorts(free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp("triton") / "triton.log"
    with TritonServer(MODEL_REPOSITORY, ports, log_path=log) as server:
        yield server
