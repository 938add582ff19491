"""Face geometry and face layers on real photos, with the converted face networks run by ONNX Runtime.

The networks are the served ones in model_repository (``make models`` writes them). ``check_face_layers`` holds the
real-photo assertions, for the Triton tests to call on the faces they get served. The parity test compares the
landmarks with MediaPipe's own FaceMesh, run in .venv-mediapipe.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from imaging import faces as fc
from imaging.face_layers import face_layers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
MODELS = {name: ROOT / "model_repository" / name / "1" / "model.onnx"
          for name in ("face_detect", "face_landmarks", "iris_landmarks")}
MEDIAPIPE_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"
MAX_MEAN_LANDMARK_PX = 1.0  # against MediaPipe's FaceMesh; measured 0.31 to 0.40 px on faces about 100 px wide
GEOMETRY_MS_PER_FACE = 60.0  # measured 16.8 ms (2 faces at 1330x752, layers with hair; one shared CPU)


@pytest.fixture(scope="module")
def sessions() -> dict[str, ort.InferenceSession]:
    missing = [str(path) for path in MODELS.values() if not path.is_file()]
    assert not missing, f"face models missing: {missing}; run `make models` first"
    return {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for name, path in MODELS.items()}


def find_faces(rgb: np.ndarray, sessions: dict[str, ort.InferenceSession]) -> list[fc.Face]:
    """Detect, then landmark and iris every face, as the served step does."""
    tensor, transform = fc.detector_input(rgb)
    regressors, scores = sessions["face_detect"].run(None, {"image": tensor[None]})
    found = []
    for face in fc.decode_detections(regressors[0], scores[0], transform):
        crop, affine = fc.landmark_crop(face, rgb)
        raw, flag = sessions["face_landmarks"].run(None, {"image": crop[None]})
        if not fc.face_present(flag[0]):
            found.append(face)
            continue
        landmarks = fc.landmarks_from(raw[0], affine)
        eyes, eye_affines, _ = fc.eye_crops(landmarks, rgb)
        contour, iris = sessions["iris_landmarks"].run(None, {"image": eyes})
        found.append(replace(face, landmarks=landmarks, irises=fc.irises_from(contour, iris, eye_affines)))
    return found


def head_and_shoulders(faces: list[fc.Face], shape: tuple[int, int]) -> np.ndarray:
    """A stand-in person matte: an ellipse over each head (hair included) and a block for the shoulders."""
    alpha = np.zeros(shape, dtype=np.float32)
    for face in faces:
        x, y, w, h = face.box
        cv2.ellipse(alpha, (round(x + w / 2), round(y + h / 2)), (round(w * 0.9), round(h * 1.0)), 0, 0, 360, 1.0, -1)
        cv2.rectangle(alpha, (round(x - w * 0.6), round(y + h)), (round(x + w * 1.6), shape[0]), 1.0, -1)
    return alpha


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.nonzero(mask.any(axis=1))[0]


def check_face_layers(faces: list[fc.Face], size: tuple[int, int], person_alpha: np.ndarray, count: int) -> None:
    """What must hold of ``count`` real frontal faces and their layers (faces in pixels of ``size``)."""
    assert len(faces) == count, f"{len(faces)} faces found, {count} expected"
    assert all(face.landmarks is not None and face.irises is not None for face in faces)
    boxes = [face.box for face in faces]
    for index, first in enumerate(boxes):
        for second in boxes[index + 1:]:
            assert first[0] + first[2] <= second[0] or second[0] + second[2] <= first[0], "boxes overlap"
    width, height = size
    for face in faces:
        layers = face_layers([face], size, person_alpha)
        x, y, w, h = face.box
        window = np.zeros((height, width), dtype=bool)  # the oval reaches the forehead, above the detection box
        window[max(0, math.floor(y - 0.35 * h)):math.ceil(y + 1.1 * h), max(0, math.floor(x - 0.1 * w)):
               math.ceil(x + 1.1 * w)] = True
        for name in ("face", "eyes", "irises", "brows", "lips", "mouth"):
            assert layers[name].max() == 255, f"{name} is empty"
            assert not layers[name][~window].any(), f"{name} leaves the face"
        assert _rows(layers["brows"]).mean() < _rows(layers["eyes"]).mean() < _rows(layers["lips"]).mean()
        assert _rows(layers["eyes"]).max() < _rows(layers["lips"]).min(), "eyes reach the lips"
        iris_area = layers["irises"].astype(np.int64).sum()
        assert iris_area > 0 and np.all(layers["irises"] <= layers["eyes"])
        for eye in face.irises:  # the iris centre lies in the eye opening
            col, row = np.floor(eye[0]).astype(int)
            assert layers["eyes"][row, col] > 128
        hair = layers["hair"]
        assert hair.any(), "no hair found"
        assert np.all(hair <= np.ceil(person_alpha * 255)), "hair outside the person matte"
        assert _rows(hair).min() < _rows(layers["face"]).min(), "no hair above the face"
        assert not np.any((hair > 0) & (layers["face"] == 255)), "hair on the skin"


@pytest.fixture(scope="module")
def two_faces() -> np.ndarray:
    head = data.astronaut()[20:280, 110:340]  # small enough a frame for the short-range detector
    return np.ascontiguousarray(np.concatenate([head, head[:, ::-1]], axis=1))


def test_astronaut_face_and_parts(sessions) -> None:
    photo = data.astronaut()
    faces = find_faces(photo, sessions)
    check_face_layers(faces, (512, 512), head_and_shoulders(faces, (512, 512)), count=1)
    right_eye, left_eye = faces[0].irises[:, 0]
    assert right_eye[0] < left_eye[0], "the subject's right eye is on the photo's left"


def test_two_faces_side_by_side(sessions, two_faces: np.ndarray) -> None:
    height, width = two_faces.shape[:2]
    faces = find_faces(two_faces, sessions)
    check_face_layers(faces, (width, height), head_and_shoulders(faces, (height, width)), count=2)
    first, mirrored = sorted(faces, key=lambda face: face.box[0])  # the second is the first's mirror image
    centres = [face.landmarks[:, 0].mean() for face in (first, mirrored)]
    assert abs(centres[0] + centres[1] - width) < 0.03 * first.box[2]
    both = face_layers(faces, (width, height), head_and_shoulders(faces, (height, width)))
    assert np.count_nonzero(both["eyes"]) > 1.8 * np.count_nonzero(face_layers(faces[:1], (width, height))["eyes"])
    packed = fc.pack(faces)
    unpacked = fc.unpack(packed)
    np.testing.assert_allclose([face.box for face in unpacked], [face.box for face in faces], atol=1e-3)
    for served, face in zip(unpacked, faces, strict=True):
        np.testing.assert_allclose(served.landmarks, face.landmarks, atol=1e-3)


_MEDIAPIPE_MESH = """
import json, sys
import numpy as np
import mediapipe as mp
image = np.load(sys.argv[1])
height, width = image.shape[:2]
with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=False) as mesh:
    found = mesh.process(image).multi_face_landmarks or []
print(json.dumps([[[p.x * width, p.y * height] for p in face.landmark] for face in found]))
"""


def test_landmarks_match_mediapipe_face_mesh(sessions, two_faces: np.ndarray, tmp_path: Path) -> None:
    assert MEDIAPIPE_PYTHON.is_file(), "MediaPipe's venv is missing: make .venv-mediapipe/.installed"
    for name, photo in (("astronaut", data.astronaut()), ("two_faces", two_faces)):
        path = tmp_path / f"{name}.npy"
        np.save(path, np.ascontiguousarray(photo))
        result = subprocess.run([str(MEDIAPIPE_PYTHON), "-c", _MEDIAPIPE_MESH, str(path)], capture_output=True,
                                text=True, timeout=120, check=True)
        theirs = [np.array(face) for face in json.loads(result.stdout.strip().splitlines()[-1])]
        ours = find_faces(photo, sessions)
        assert len(theirs) == len(ours)
        for face in ours:
            distances = [np.linalg.norm(mesh - face.landmarks[:, :2], axis=1).mean() for mesh in theirs]
            assert min(distances) < MAX_MEAN_LANDMARK_PX, f"{name}: {min(distances):.2f} px from MediaPipe"


def test_geometry_time_per_face_at_one_megapixel(sessions, two_faces: np.ndarray) -> None:
    scale = math.sqrt(1e6 / (two_faces.shape[0] * two_faces.shape[1]))
    photo = cv2.resize(two_faces, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    height, width = photo.shape[:2]
    tensor, transform = fc.detector_input(photo)
    regressors, scores = sessions["face_detect"].run(None, {"image": tensor[None]})
    detected = fc.decode_detections(regressors[0], scores[0], transform)
    crops = [fc.landmark_crop(face, photo) for face in detected]
    raw = [sessions["face_landmarks"].run(None, {"image": crop[None]})[0][0] for crop, _ in crops]
    landmarks = [fc.landmarks_from(values, affine) for values, (_, affine) in zip(raw, crops, strict=True)]
    eyes = [fc.eye_crops(points, photo) for points in landmarks]
    iris = [sessions["iris_landmarks"].run(None, {"image": tensors}) for tensors, _, _ in eyes]
    alpha = head_and_shoulders(detected, (height, width))
    runs = []
    for _ in range(5):  # the geometry alone: every step but the networks
        start = time.perf_counter()
        tensor, transform = fc.detector_input(photo)
        faces = fc.decode_detections(regressors[0], scores[0], transform)
        for index, face in enumerate(faces):
            _, affine = fc.landmark_crop(face, photo)
            points = fc.landmarks_from(raw[index], affine)
            _, eye_affines, _ = fc.eye_crops(points, photo)
            faces[index] = replace(face, landmarks=points, irises=fc.irises_from(*iris[index], eye_affines))
        face_layers(faces, (width, height), alpha)
        runs.append(time.perf_counter() - start)
    per_face_ms = min(runs) * 1000 / len(faces)
    print(f"face geometry at {width}x{height}: {per_face_ms:.1f} ms per face ({len(faces)} faces)")
    assert len(faces) == 2
    assert per_face_ms < GEOMETRY_MS_PER_FACE
