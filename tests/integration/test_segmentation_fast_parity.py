"""Parity of the converted selfie segmentation model with MediaPipe's own runtime.

The reference runs in the separate interpreter .venv-mediapipe (mediapipe needs
protobuf<5) through converters/mediapipe_reference.py, on the same 256x256
photos; the ONNX model runs them all in one batch.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from skimage import data

from converters.catalog import get_source
from converters.fetch import fetch_source
from converters.tflite_to_onnx import convert_tflite

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
MEDIAPIPE_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "converters" / "mediapipe_reference.py"
SIZE = 256
MAX_ABS_DIFF = 1e-3

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": data.astronaut,
    "coffee": data.coffee,
    "chelsea": data.chelsea,
    "camera": data.camera,  # grayscale photo of a person
}
# Boxes (y0, y1, x0, x1) on the 256x256 astronaut, checked against the mask by eye.
ASTRONAUT_FACE = (20, 80, 85, 140)
ASTRONAUT_TORSO = (110, 190, 40, 160)
ASTRONAUT_WALL = (0, 64, 216, 256)  # top-right corner, plain wall beside the shuttle


def _photo(load: Callable[[], np.ndarray]) -> np.ndarray:
    image = load()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.asarray(Image.fromarray(image[..., :3]).resize((SIZE, SIZE), Image.BILINEAR))


def _box_mean(mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    y0, y1, x0, x1 = box
    return float(mask[y0:y1, x0:x1].mean())


@pytest.fixture(scope="module")
def model_path() -> Path:
    return fetch_source(get_source("matte_fast"))


@pytest.fixture(scope="module")
def photo_batch() -> np.ndarray:
    return np.stack([_photo(load) for load in PHOTOS.values()])


@pytest.fixture(scope="module")
def onnx_alpha(model_path: Path, photo_batch: np.ndarray) -> np.ndarray:
    model = convert_tflite(model_path.read_bytes())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    batch = (photo_batch.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    (alpha,) = session.run(["alpha"], {"image": batch})
    assert alpha.shape == (len(photo_batch), 1, SIZE, SIZE)
    return alpha[:, 0]


@pytest.fixture(scope="module")
def mediapipe_alpha(
    model_path: Path, photo_batch: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> np.ndarray:
    if not MEDIAPIPE_PYTHON.exists():
        pytest.fail(
            f"{MEDIAPIPE_PYTHON.relative_to(ROOT)} is missing: run `make test`, which creates it "
            "(python3 -m venv .venv-mediapipe && "
            ".venv-mediapipe/bin/pip install -r converters/requirements-mediapipe.txt)"
        )
    work = tmp_path_factory.mktemp("mediapipe")
    images, out = work / "images.npy", work / "alpha.npy"
    np.save(images, photo_batch)
    result = subprocess.run(
        [str(MEDIAPIPE_PYTHON), str(REFERENCE_SCRIPT), "--model", str(model_path),
         "--images", str(images), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (
        f"mediapipe_reference.py failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    )
    alpha = np.load(out)
    assert alpha.shape == (len(photo_batch), SIZE, SIZE) and alpha.dtype == np.float32
    return alpha


@pytest.mark.parametrize("index, name", list(enumerate(PHOTOS)))
def test_matches_mediapipe(
    index: int, name: str, onnx_alpha: np.ndarray, mediapipe_alpha: np.ndarray
) -> None:
    diff = float(np.abs(onnx_alpha[index] - mediapipe_alpha[index]).max())
    assert diff <= MAX_ABS_DIFF, f"{name}: max abs diff {diff:.3g} against MediaPipe exceeds {MAX_ABS_DIFF}"


def test_astronaut_mask_covers_the_person(onnx_alpha: np.ndarray) -> None:
    mask = onnx_alpha[list(PHOTOS).index("astronaut")]
    assert _box_mean(mask, ASTRONAUT_FACE) > 0.8
    assert _box_mean(mask, ASTRONAUT_TORSO) > 0.8
    assert _box_mean(mask, ASTRONAUT_WALL) < 0.2
