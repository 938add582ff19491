"""Parity of the converted MediaPipe face networks with MediaPipe's own TFLite runtime, on real photos.

The reference runs in the separate interpreter .venv-mediapipe (mediapipe needs protobuf<5) through
converters/mediapipe_tensors.py: MediaPipe's ImageToTensorCalculator and InferenceCalculatorCpu (XNNPACK), which
return both the input tensor MediaPipe made and the raw output tensors. Our side is the served path: the model as
converters/build.py converts it, fed imaging.tensors.normalize() with the catalog's normalisation, all photos of a
model in one batch. Photos: skimage's astronaut and cameraman (grayscale, as RGB), and a composite with both faces;
both detectors (short and full range) see the same three.
Crops for the landmark networks are plain square boxes around a face or an eye (found with these networks, checked
by eye); parity is about the networks, not MediaPipe's crop geometry.

Tolerances: |ours - MediaPipe's| <= atol + RTOL * |MediaPipe's|, per element. Measured (mediapipe 0.10.14 XNNPACK
against onnxruntime 1 thread or 2, x86-64): on the photos and crops at most 1.4e-4 pixels for landmarks and
regressors (values up to 260) and 1.7e-4 on a logit, relative at most 1e-6: float32 rounding of differently
ordered sums. The composite's black border drives some anchors to extreme values (logits down to -336, which
MediaPipe clips to -100 before its sigmoid; regressors to 310 pixels) where the error grows with the value: at
most 3.8e-3 there, relative 1.1e-5. The full-range detector (face_detect_full, its sparse fp16 weights densified
at conversion): at most 1.3e-4 pixels on regressors (values up to 157) and 2.1e-4 on a logit (values down to -258),
relative at most 2.4e-5, the same with 1 thread or 2. atol (5e-3 pixels of the model input, 1e-3 on a logit: a
probability change below 2.5e-4) and RTOL = 5e-5 leave a margin of about 30x and 4x for other CPUs' kernels, far
below anything visible.
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

from converters.build import convert
from converters.catalog import ModelSource, get_source
from converters.fetch import fetch_source
from imaging.tensors import normalize

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
MEDIAPIPE_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "converters" / "mediapipe_tensors.py"
FLOAT_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}  # ImageToTensorCalculator output_tensor_float_range
MAX_INPUT_DIFF = 1e-6
RTOL = 5e-5
ATOL = {  # ONNX output name -> absolute part of the tolerance (see the module docstring)
    "regressors": 5e-3, "scores": 1e-3,  # pixels of the detector's input (128x128 or 192x192); logits
    "landmarks": 5e-3, "face_flag": 1e-3,  # pixels of the 192x192 crop; logit
    "eye_contour": 5e-3, "iris": 5e-3,  # pixels of the 64x64 eye crop
}

# Square boxes (x0, y0, side) in the 512x512 photos. Faces: the detector's box centre, 1.5x its size (as
# MediaPipe enlarges it); eyes: centred between the eye corners of the face landmarks, 2.3x the eye's width.
ASTRONAUT_FACE = (154, 57, 144)
CAMERA_FACE = (150, 97, 140)
ASTRONAUT_LEFT_EYE = (224, 82, 45)  # the subject's left eye, on the image's right: the side the model is trained on
ASTRONAUT_RIGHT_EYE = (182, 80, 45)  # flipped horizontally before the model, as MediaPipe does
CAMERA_RIGHT_EYE = (206, 129, 36)
# Face centres (x, y) in the 512x512 photos, from the detector, checked by eye.
ASTRONAUT_FACE_CENTRE = (226, 129)
# Astronaut left, cameraman right. Full range boxes the cameraman's profile tighter on the visible face (eye to
# chin, without the ear): its centre lies 16 px further right.
COMPOSITE_FACE_CENTRES = {"face_detect": ((128, 256), (384, 256)), "face_detect_full": ((128, 256), (400, 249))}


def _camera() -> np.ndarray:
    return np.repeat(data.camera()[..., None], 3, axis=2)


def _two_faces() -> np.ndarray:
    """Both faces, each in a 256x256 box around it, side by side on a black 512x512 canvas."""
    canvas = np.zeros((512, 512, 3), np.uint8)
    canvas[128:384, :256] = data.astronaut()[1:257, 98:354]
    canvas[128:384, 256:] = _camera()[39:295, 92:348]
    return canvas


def _crop(photo: np.ndarray, box: tuple[int, int, int], size: int, mirror: bool = False) -> np.ndarray:
    x0, y0, side = box
    crop = np.asarray(Image.fromarray(photo[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.BILINEAR))
    return np.ascontiguousarray(crop[:, ::-1] if mirror else crop)


def _whole(photo: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(photo).resize((size, size), Image.BILINEAR))


DETECTOR_PHOTOS: dict[str, Callable[[int], np.ndarray]] = {
    "astronaut": lambda size: _whole(data.astronaut(), size),
    "camera": lambda size: _whole(_camera(), size),
    "two_faces": lambda size: _whole(_two_faces(), size),
}
PHOTOS: dict[str, dict[str, Callable[[int], np.ndarray]]] = {  # model -> label -> image at the model's size
    "face_detect": DETECTOR_PHOTOS,
    "face_detect_full": DETECTOR_PHOTOS,
    "face_landmarks": {
        "astronaut": lambda size: _crop(data.astronaut(), ASTRONAUT_FACE, size),
        "astronaut_mirrored": lambda size: _crop(data.astronaut(), ASTRONAUT_FACE, size, mirror=True),
        "camera": lambda size: _crop(_camera(), CAMERA_FACE, size),
    },
    "iris_landmarks": {
        "astronaut_left": lambda size: _crop(data.astronaut(), ASTRONAUT_LEFT_EYE, size),
        "astronaut_right": lambda size: _crop(data.astronaut(), ASTRONAUT_RIGHT_EYE, size, mirror=True),
        "camera_right": lambda size: _crop(_camera(), CAMERA_RIGHT_EYE, size, mirror=True),
    },
}
CASES = [(name, output) for name in PHOTOS for output in get_source(name).output_shapes]


def _images(source: ModelSource) -> np.ndarray:
    assert source.input_height == source.input_width
    return np.stack([make(source.input_height) for make in PHOTOS[source.name].values()])


def _mediapipe(source: ModelSource, model_path: Path, images: np.ndarray, work: Path) -> dict[str, np.ndarray]:
    if not MEDIAPIPE_PYTHON.exists():
        pytest.fail(
            f"{MEDIAPIPE_PYTHON.relative_to(ROOT)} is missing: run `make test`, which creates it "
            "(python3 -m venv .venv-mediapipe && "
            ".venv-mediapipe/bin/pip install -r converters/requirements-mediapipe.txt)"
        )
    np.save(work / "images.npy", images)
    low, high = FLOAT_RANGES[source.normalization]
    result = subprocess.run(
        [str(MEDIAPIPE_PYTHON), str(REFERENCE_SCRIPT), "--model", str(model_path), "--images",
         str(work / "images.npy"), "--range", str(low), str(high), "--outputs", str(len(source.output_shapes)),
         "--out", str(work / "tensors.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mediapipe_tensors.py failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    with np.load(work / "tensors.npz") as saved:
        tensors = {"input": saved["input"]}
        for position, (name, dims) in enumerate(source.output_shapes.items()):
            tensors[name] = saved[f"output_{position}"].reshape(len(images), *dims)
    return tensors


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """model -> {"input": our input tensors, "onnx": our outputs, "mediapipe": MediaPipe's input and outputs}."""
    results = {}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    for name in PHOTOS:
        source = get_source(name)
        model_path = fetch_source(source)
        images = _images(source)
        session = ort.InferenceSession(convert(source, model_path).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        batch = np.stack([normalize(image, source.normalization) for image in images])
        onnx_outputs = dict(zip(source.output_shapes, session.run(list(source.output_shapes), {"image": batch}),
                                strict=True))
        results[name] = {
            "input": {"input": batch.transpose(0, 2, 3, 1)},
            "onnx": onnx_outputs,
            "mediapipe": _mediapipe(source, model_path, images, tmp_path_factory.mktemp(name)),
        }
    return results


@pytest.mark.parametrize("name", list(PHOTOS))
def test_the_catalog_normalisation_is_mediapipes(name: str, runs: dict) -> None:
    ours, theirs = runs[name]["input"]["input"], runs[name]["mediapipe"]["input"]
    assert ours.shape == theirs.shape
    diff = float(np.abs(ours - theirs).max())
    assert diff <= MAX_INPUT_DIFF, f"{name}: our input tensor differs from MediaPipe's by {diff:.3g}"


@pytest.mark.parametrize(("name", "output"), CASES)
def test_raw_outputs_match_mediapipe(name: str, output: str, runs: dict) -> None:
    ours, theirs = runs[name]["onnx"][output], runs[name]["mediapipe"][output]
    assert ours.shape == theirs.shape == (len(PHOTOS[name]), *get_source(name).output_shapes[output])
    for index, label in enumerate(PHOTOS[name]):
        excess = np.abs(ours[index] - theirs[index]) - (ATOL[output] + RTOL * np.abs(theirs[index]))
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        assert excess[worst] <= 0, (
            f"{name}.{output} on {label}: {ours[index][worst]:.6g} against MediaPipe's {theirs[index][worst]:.6g} "
            f"at {worst} exceeds the tolerance {ATOL[output]} + {RTOL} * |value|")


# MediaPipe's SsdAnchorsCalculator grids per detector: (cells per side, anchors per cell), in output order.
ANCHOR_GRIDS = {"face_detect": ((16, 2), (8, 6)), "face_detect_full": ((48, 1),)}


def _anchor_centres(name: str) -> np.ndarray:
    """Centres (x, y) of a detector's anchors in pixels of its input: short range 2 anchors per cell of a 16x16
    grid, then 6 per cell of an 8x8 grid (896); full range 1 per cell of a 48x48 grid (2304)."""
    size = get_source(name).input_width
    centres = []
    for grid, per_cell in ANCHOR_GRIDS[name]:
        for row in range(grid):
            for col in range(grid):
                centres += [((col + 0.5) * size / grid, (row + 0.5) * size / grid)] * per_cell
    return np.array(centres)


def _best_face(name: str, regressors: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """The best anchor's logit among ``mask`` and its box centre in the 512x512 photo."""
    index = int(np.flatnonzero(mask)[np.argmax(scores[mask, 0])])
    return float(scores[index, 0]), (_anchor_centres(name)[index] + regressors[index, :2]) * 512 / \
        get_source(name).input_width


@pytest.mark.parametrize("name", list(ANCHOR_GRIDS))
def test_the_detector_finds_the_faces_where_they_are(name: str, runs: dict) -> None:
    regressors, scores = runs[name]["onnx"]["regressors"], runs[name]["onnx"]["scores"]
    labels = list(PHOTOS[name])
    logit, centre = _best_face(name, regressors[labels.index("astronaut")], scores[labels.index("astronaut")],
                               np.ones(len(scores[0]), bool))
    assert logit > 1.0 and np.hypot(*(centre - ASTRONAUT_FACE_CENTRE)) < 12, (logit, centre)
    two = labels.index("two_faces")
    halves = (_anchor_centres(name)[:, 0] + regressors[two, :, 0]) < get_source(name).input_width / 2
    for side, expected in zip((halves, ~halves), COMPOSITE_FACE_CENTRES[name], strict=True):
        logit, centre = _best_face(name, regressors[two], scores[two], side)
        assert logit > 0.0 and np.hypot(*(centre - expected)) < 16, (expected, logit, centre)


def test_the_face_landmarks_see_a_face_and_put_the_nose_in_it(runs: dict) -> None:
    landmarks, flags = runs["face_landmarks"]["onnx"]["landmarks"], runs["face_landmarks"]["onnx"]["face_flag"]
    labels = list(PHOTOS["face_landmarks"])
    assert flags[labels.index("astronaut"), 0] > 5 and flags[labels.index("astronaut_mirrored"), 0] > 5
    assert flags[labels.index("camera"), 0] > 0  # a profile behind a camera: less sure, still a face
    points = landmarks[labels.index("astronaut")].reshape(468, 3)
    x0, y0, side = ASTRONAUT_FACE
    nose_tip = points[1, :2] * side / 192 + (x0, y0)  # landmark 1: the nose tip
    assert np.hypot(*(nose_tip - ASTRONAUT_FACE_CENTRE)) < 12, nose_tip


def test_the_iris_centre_is_in_the_middle_of_each_eye_crop(runs: dict) -> None:
    iris = runs["iris_landmarks"]["onnx"]["iris"]
    for index, label in enumerate(PHOTOS["iris_landmarks"]):
        centre = iris[index, :2]  # the first of the 5 iris points is its centre, in pixels of the 64x64 crop
        assert np.hypot(*(centre - 32)) < 6, (label, centre)
