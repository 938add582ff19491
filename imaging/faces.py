"""Face geometry around MediaPipe's face networks (pure NumPy and OpenCV, no Triton).

The networks are a BlazeFace detector, FaceMesh (468 landmarks, 192x192 crops) and the iris model (64x64 eye
crops). This module prepares their inputs and reads their outputs the way MediaPipe's graphs do
(face_detection_short_range or face_detection_full_range, face_landmark_front, iris_landmark_left_and_right):

- detector: the photo letterboxed into a centred square (black bars), anchors of an SSD grid of fixed size, scores
  through a clipped sigmoid, weighted non-maximum suppression. Its geometry is a :class:`Detector`: SHORT_RANGE
  (128x128, strides 8, 16, 16, 16: 896 anchors, faces within about 2 m) or FULL_RANGE (192x192, stride 4: 2304
  anchors, faces within about 5 m, so also small faces in large photos); DETECTORS finds one by its input side;
- landmarks: a square crop 1.5 times the detection box's longer side, rotated so that the eyes (detector keypoints
  0 and 1) are level, the network's crop pixels projected back into the photo;
- irises: per eye a square crop 2.3 times the span of the eye corners (landmarks 33/133 and 362/263), rotated
  along them; the subject's left eye (362/263) is mirrored before the network, as MediaPipe does.

Coordinates are continuous pixels: (0, 0) is the top-left corner of the top-left pixel, so pixel (col, row) covers
[col, col + 1) x [row, row + 1). Every crop comes with a 2x3 affine from its tensor's pixels to the photo's.
Faces, in the order of their scores, are packed into one float32 tensor per photo (:func:`pack`) for Triton.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from contract.product import MAX_FACES
from imaging.tensors import normalize

LANDMARK_SIZE = 192
EYE_SIZE = 64
NUM_KEYPOINTS = 6  # the subject's right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion
NUM_LANDMARKS = 468
IRIS_POINTS = 5  # centre, then four on the rim
EYE_CONTOUR_POINTS = 71
LANDMARK_NORMALIZATION = "unit"  # [0, 1], both the landmark and the iris network
EYE_CORNERS = ((33, 133), (362, 263))  # the subject's right eye, then left; each pair runs left to right
FLIPPED_EYES = (False, True)  # the iris network sees the subject's left eye mirrored

_FACE_ROI_SCALE = 1.5
_EYE_ROI_SCALE = 2.3
_SUPPRESSION_IOU = 0.3
_BOX_VALUES = 4 + 2 * NUM_KEYPOINTS  # per anchor: box centre x, y, width, height, then the keypoints


@dataclass(frozen=True)
class Detector:
    """The geometry of one BlazeFace detector, as its MediaPipe graph sets it.

    ``size``: the square input side (ImageToTensorCalculator, float range of ``normalization``); ``strides`` and
    ``anchors_per_layer``: SsdAnchorsCalculator's layers, each with an anchor per aspect ratio (only 1) plus one
    for the interpolated scale when that is on, all of fixed size 1 and centred in their cells;
    ``coordinate_scale``: TensorsToDetectionsCalculator's x, y, w and h scale (all equal: the regressors are in
    input pixels); ``min_score``, ``score_clip``: its min_score_thresh and score_clipping_thresh;
    ``suppression_iou``: NonMaxSuppressionCalculator's min_suppression_threshold (weighted, IoU).
    """

    name: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    coordinate_scale: float
    min_score: float
    suppression_iou: float
    score_clip: float = 100.0
    normalization: str = "symmetric"  # MediaPipe's float range [-1, 1]

    def __post_init__(self) -> None:
        if (self.size < 1 or not self.strides or min(self.strides) < 1 or self.anchors_per_layer < 1
                or not self.coordinate_scale > 0 or not 0 < self.min_score < 1 or not 0 < self.suppression_iou < 1):
            raise ValueError(f"Detector {self.name!r} needs a size, strides and anchors per layer of at least 1, a "
                             f"positive coordinate scale and a min score and IoU threshold in (0, 1); got {self}")

    @property
    def num_anchors(self) -> int:
        return sum(math.ceil(self.size / stride) ** 2 * self.anchors_per_layer for stride in self.strides)


# Read from mediapipe 0.10.14's face_detection_{short,full}_range_cpu.binarypb, their subgraphs expanded
# (tests/integration/test_face_geometry.py checks them against the graphs).
SHORT_RANGE = Detector(name="face_detection_short_range", size=128, strides=(8, 16, 16, 16), anchors_per_layer=2,
                       coordinate_scale=128.0, min_score=0.5, suppression_iou=0.3)
FULL_RANGE = Detector(name="face_detection_full_range", size=192, strides=(4,), anchors_per_layer=1,
                      coordinate_scale=192.0, min_score=0.6, suppression_iou=0.3)
DETECTORS = {detector.size: detector for detector in (SHORT_RANGE, FULL_RANGE)}  # by the catalogued input side
# The short-range detector's, for callers that know only that one.
DETECTOR_SIZE = SHORT_RANGE.size
NUM_ANCHORS = SHORT_RANGE.num_anchors
DETECTOR_NORMALIZATION = SHORT_RANGE.normalization


@dataclass(frozen=True)
class Face:
    """One face in photo pixels.

    ``box`` is (x, y, width, height) of the detection; ``keypoints`` (6, 2) are the detector's (see
    ``NUM_KEYPOINTS``); ``landmarks`` (468, 3) are FaceMesh points (x, y, and z in pixels of the same scale,
    negative towards the camera); ``irises`` (2, 5, 2) are the subject's right eye, then left eye, each the centre
    and four rim points. Landmarks and irises are None until their networks ran (or found no face).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    irises: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_shape("Face.keypoints", self.keypoints, (NUM_KEYPOINTS, 2))
        if self.landmarks is not None:
            _check_shape("Face.landmarks", self.landmarks, (NUM_LANDMARKS, 3))
        if self.irises is not None:
            _check_shape("Face.irises", self.irises, (2, IRIS_POINTS, 2))
        if len(self.box) != 4 or self.box[2] < 0 or self.box[3] < 0:
            raise ValueError(f"Face.box must be (x, y, width, height) with sizes >= 0, got {self.box}")


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if np.shape(array) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {np.shape(array)}")


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"the photo must be an 8-bit RGB array of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")


def _check_detector(detector: Detector) -> None:
    if not isinstance(detector, Detector):
        raise ValueError(f"detector must be an imaging.faces.Detector (SHORT_RANGE or FULL_RANGE), got {detector!r}")


def ssd_anchors(detector: Detector = SHORT_RANGE) -> np.ndarray:
    """The detector's anchor centres (x, y) in [0, 1] of its input, in the order of its outputs.

    Consecutive layers of one stride share a grid, row-major, each cell holding their anchors in turn: short range
    has 16x16 cells of 2 anchors (stride 8), then 8x8 cells of 6 (the three stride-16 layers); full range 48x48
    cells of 1 (stride 4). Anchors have a fixed size of 1, so only their centres matter.
    """
    _check_detector(detector)
    centres = []
    layer = 0
    while layer < len(detector.strides):
        stride = detector.strides[layer]
        same = 1
        while layer + same < len(detector.strides) and detector.strides[layer + same] == stride:
            same += 1
        cells = math.ceil(detector.size / stride)
        grid = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        y, x = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([x.ravel(), y.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, same * detector.anchors_per_layer, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


@functools.cache
def _anchors(detector: Detector) -> np.ndarray:
    anchors = ssd_anchors(detector)
    anchors.flags.writeable = False
    return anchors


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 2) mapped through a 2x3 affine."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def _affine_scale(affine: np.ndarray) -> float:
    """Photo pixels per tensor pixel (the affines here are similarities)."""
    return float(math.hypot(affine[0, 0], affine[1, 0]))


def _warp(rgb: np.ndarray, affine: np.ndarray, size: int, border: int) -> np.ndarray:
    """The size x size crop of the photo under ``affine``, bilinear on MediaPipe's sampling grid: tensor pixel
    index (u, v) samples the photo at pixel index ``affine @ (u, v, 1)``, as its OpenCV path does (so the networks
    see what they see in MediaPipe). Where the crop shrinks the photo by 2 or more, the photo is area-averaged
    first on the same grid, so that small tensors of large photos do not alias (results then stay the same
    across photo sizes instead of drifting with them)."""
    shrink = int(_affine_scale(affine))
    index_map = affine
    if shrink >= 2:
        corners = apply_affine(affine, np.array([[0, 0], [size, 0], [0, size], [size, size]]))
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2 * shrink
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2 * shrink
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, rgb.shape[1]), min(y1, rgb.shape[0])
        if x1 - x0 >= shrink and y1 - y0 >= shrink:
            rgb = cv2.resize(rgb[y0:y1, x0:x1], None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
            # photo index p is shrunk index (p + 0.5) / shrink - 0.5 once the region's origin is taken off
            index_map = affine / shrink
            index_map[:, 2] = (affine[:, 2] - (x0, y0) + 0.5) / shrink - 0.5
    return cv2.warpAffine(rgb, index_map, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=(0, 0, 0))


def _square_roi(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """Affine from a size x size tensor to the photo square of ``side`` pixels around ``centre``, turned by
    ``angle`` (radians, clockwise on screen): the tensor's x axis runs along (cos, sin) of the photo."""
    scale = side / size
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    offset = np.asarray(centre, dtype=np.float64) - linear @ np.array([size / 2, size / 2])
    return np.concatenate([linear, offset[:, None]], axis=1)


def detector_input(rgb: np.ndarray, detector: Detector = SHORT_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """The detector's input (3, size, size) float32 in [-1, 1] and the affine from its pixels to the photo's.

    The photo is centred in a square of its longer side with black bars (MediaPipe's keep_aspect_ratio with
    BORDER_ZERO), then scaled to the detector's size (128 short range, 192 full range).
    """
    _check_rgb(rgb)
    _check_detector(detector)
    height, width = rgb.shape[:2]
    side = max(width, height)
    affine = _square_roi(np.array([width / 2, height / 2]), side, 0.0, detector.size)
    crop = _warp(rgb, affine, detector.size, cv2.BORDER_CONSTANT)
    return normalize(crop, detector.normalization), affine


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of ``boxes``; 0 where the union is empty."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = _SUPPRESSION_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Weighted non-maximum suppression: the best remaining box takes every box overlapping it by more than
    ``threshold`` IoU, and becomes their score-weighted mean (box and keypoints) with its own score.

    ``boxes`` (n, 4) are (x0, y0, x1, y1), ``keypoints`` (n, k, 2), ``scores`` (n,). Returns (box, keypoints,
    score) per face, best first.
    """
    order = np.argsort(-scores, kind="stable")
    faces = []
    while order.size:
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > threshold
        overlap[0] = True
        group, order = order[overlap], order[~overlap]
        weights = scores[group] / scores[group].sum()
        box = np.tensordot(weights, boxes[group], axes=1)
        points = np.tensordot(weights, keypoints[group], axes=1)
        faces.append((box, points, float(scores[best])))
    return faces


def decode_detections(regressors: np.ndarray, scores: np.ndarray, transform: np.ndarray,
                      min_score: float | None = None, detector: Detector = SHORT_RANGE) -> list[Face]:
    """Faces from the detector's outputs for one photo, best first, in photo pixels.

    ``regressors`` (n, 16) or (1, n, 16), n the detector's anchors (896 short range, 2304 full range): per anchor
    the box centre offset and size, then six keypoints, in input pixels; ``scores`` (n,), (n, 1) or (1, n, 1)
    logits; ``transform`` is detector_input's affine; ``min_score`` defaults to the detector's (0.5 short range,
    0.6 full range).
    """
    _check_detector(detector)
    count = detector.num_anchors
    regressors = np.asarray(regressors, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if regressors.shape not in ((count, _BOX_VALUES), (1, count, _BOX_VALUES)):
        raise ValueError(f"regressors must have shape ({count}, {_BOX_VALUES}) or (1, {count}, {_BOX_VALUES}) (one "
                         f"photo of {detector.name}), got {regressors.shape}")
    if scores.shape not in ((count,), (count, 1), (1, count, 1)):
        raise ValueError(f"scores must have {count} logits ({detector.name}), shape ({count},), ({count}, 1) or "
                         f"(1, {count}, 1), got {scores.shape}")
    _check_shape("transform", transform, (2, 3))
    min_score = detector.min_score if min_score is None else min_score
    if not 0 < min_score < 1:
        raise ValueError(f"min_score must be between 0 and 1 (exclusive), got {min_score}")
    raw = regressors.reshape(count, _BOX_VALUES).astype(np.float64) / detector.coordinate_scale
    clip = detector.score_clip
    probability = 1 / (1 + np.exp(-np.clip(scores.reshape(-1).astype(np.float64), -clip, clip)))
    keep = probability >= min_score
    anchors = _anchors(detector)[keep].astype(np.float64)
    raw, probability = raw[keep], probability[keep]
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1) * detector.size
    keypoints = (raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]) * detector.size
    faces = []
    for box, points, score in weighted_nms(boxes, keypoints, probability, detector.suppression_iou):
        (x0, y0), (x1, y1) = apply_affine(transform, box.reshape(2, 2))
        faces.append(Face(box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score=score,
                          keypoints=apply_affine(transform, points).astype(np.float32)))
    return faces


def landmark_roi(face: Face) -> np.ndarray:
    """Affine from the landmark network's 192x192 input to the photo: a square 1.5 times the box's longer side
    around its centre, turned so that the eyes (keypoints 0 and 1) are level in the crop."""
    x, y, width, height = face.box
    eye_right, eye_left = face.keypoints[0], face.keypoints[1]
    angle = math.atan2(eye_left[1] - eye_right[1], eye_left[0] - eye_right[0])
    centre = np.array([x + width / 2, y + height / 2])
    return _square_roi(centre, _FACE_ROI_SCALE * max(width, height), angle, LANDMARK_SIZE)


def landmark_crop(face: Face, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The landmark network's input (3, 192, 192) float32 in [0, 1], upright, and its affine to the photo."""
    _check_rgb(rgb)
    affine = landmark_roi(face)
    crop = _warp(rgb, affine, LANDMARK_SIZE, cv2.BORDER_REPLICATE)
    return normalize(crop, LANDMARK_NORMALIZATION), affine


def landmarks_from(raw: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The landmark network's 1404 values (x, y, z per point in crop pixels) as (468, 3) photo pixels."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size != NUM_LANDMARKS * 3 or raw.shape not in ((NUM_LANDMARKS * 3,), (1, NUM_LANDMARKS * 3)):
        raise ValueError(f"landmarks must be {NUM_LANDMARKS * 3} values (one face), got shape {raw.shape}")
    _check_shape("affine", affine, (2, 3))
    points = raw.reshape(NUM_LANDMARKS, 3)
    xy = apply_affine(affine, points[:, :2])
    z = points[:, 2] * _affine_scale(affine)
    return np.concatenate([xy, z[:, None]], axis=1).astype(np.float32)


def face_present(flag_logit: np.ndarray | float) -> bool:
    """Whether the landmark network saw a face in its crop (its flag's sigmoid above 0.5)."""
    flag = np.asarray(flag_logit, dtype=np.float64)
    if flag.size != 1:
        raise ValueError(f"face_flag must be one logit per face, got shape {flag.shape}")
    return bool(flag.reshape(()) > 0)


def eye_crops(landmarks: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The iris network's inputs for one face: (2, 3, 64, 64) float32 in [0, 1] (the subject's right eye, then
    the left eye mirrored), their affines (2, 2, 3) to the photo (mirroring included) and the mirrored flags."""
    _check_shape("landmarks", landmarks, (NUM_LANDMARKS, 3))
    _check_rgb(rgb)
    tensors, affines = [], []
    mirror = np.array([[-1.0, 0.0, EYE_SIZE], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for (start, end), flipped in zip(EYE_CORNERS, FLIPPED_EYES, strict=True):
        p0, p1 = landmarks[start, :2].astype(np.float64), landmarks[end, :2].astype(np.float64)
        side = _EYE_ROI_SCALE * float(np.max(np.abs(p1 - p0)))
        angle = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
        affine = _square_roi((p0 + p1) / 2, max(side, 1.0), angle, EYE_SIZE)
        if flipped:
            affine = affine @ mirror
        affines.append(affine)
        tensors.append(normalize(_warp(rgb, affine, EYE_SIZE, cv2.BORDER_REPLICATE), LANDMARK_NORMALIZATION))
    return np.stack(tensors), np.stack(affines), np.array(FLIPPED_EYES)


def irises_from(eye_contour: np.ndarray, iris: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """The iris network's outputs for one face's two eye crops as irises (2, 5, 2) in photo pixels: per eye the
    centre, then the rim along the eye from the subject's right, its top, the rim towards the subject's left and
    its bottom (for both eyes: the second crop's mirroring is undone).

    ``eye_contour`` (2, 213) is checked for shape only (the eyelids come from the face landmarks); ``iris``
    (2, 15) holds 5 points (x, y, z) in crop pixels; ``affines`` are eye_crops'.
    """
    eye_contour, iris = np.asarray(eye_contour), np.asarray(iris, dtype=np.float64)
    _check_shape("eye_contour", eye_contour, (2, EYE_CONTOUR_POINTS * 3))
    _check_shape("iris", iris, (2, IRIS_POINTS * 3))
    _check_shape("affines", affines, (2, 2, 3))
    points = iris.reshape(2, IRIS_POINTS, 3)[..., :2]
    irises = np.stack([apply_affine(affines[eye], points[eye]) for eye in range(2)])
    for eye, flipped in enumerate(FLIPPED_EYES):
        if flipped:  # the mirrored crop lists the rim's outer and inner points the other way round
            irises[eye, [1, 3]] = irises[eye, [3, 1]]
    return irises.astype(np.float32)


# Packing: one row per face, [x, y, w, h, score, has_landmarks, has_irises, keypoints, landmarks, irises]
_HEADER = 7
_KEYPOINT_VALUES = NUM_KEYPOINTS * 2
_LANDMARK_VALUES = NUM_LANDMARKS * 3
_IRIS_VALUES = 2 * IRIS_POINTS * 2
FACE_VALUES = _HEADER + _KEYPOINT_VALUES + _LANDMARK_VALUES + _IRIS_VALUES


def pack(faces: list[Face], max_faces: int = MAX_FACES) -> np.ndarray:
    """Faces as one float32 (max_faces, FACE_VALUES) array: a row per face in order, unused rows all zero (score
    0). Faces beyond ``max_faces`` are dropped (they come best first)."""
    if max_faces < 1:
        raise ValueError(f"max_faces must be at least 1, got {max_faces}")
    packed = np.zeros((max_faces, FACE_VALUES), dtype=np.float32)
    for row, face in zip(packed, faces[:max_faces], strict=False):
        if not face.score > 0:
            raise ValueError(f"a packed face needs a score above 0 (0 marks an unused row), got {face.score}")
        row[:_HEADER] = (*face.box, face.score, face.landmarks is not None, face.irises is not None)
        at = _HEADER
        row[at:at + _KEYPOINT_VALUES] = face.keypoints.ravel()
        at += _KEYPOINT_VALUES
        if face.landmarks is not None:
            row[at:at + _LANDMARK_VALUES] = face.landmarks.ravel()
        at += _LANDMARK_VALUES
        if face.irises is not None:
            row[at:at + _IRIS_VALUES] = face.irises.ravel()
    return packed


def unpack(packed: np.ndarray) -> list[Face]:
    """The faces of a :func:`pack` array (rows with a score above 0)."""
    packed = np.asarray(packed, dtype=np.float32)
    if packed.ndim != 2 or packed.shape[1] != FACE_VALUES:
        raise ValueError(f"packed faces must have shape (max_faces, {FACE_VALUES}), got {packed.shape}")
    faces = []
    for row in packed[packed[:, 4] > 0]:
        at = _HEADER
        keypoints = row[at:at + _KEYPOINT_VALUES].reshape(NUM_KEYPOINTS, 2).copy()
        at += _KEYPOINT_VALUES
        landmarks = row[at:at + _LANDMARK_VALUES].reshape(NUM_LANDMARKS, 3).copy() if row[5] else None
        at += _LANDMARK_VALUES
        irises = row[at:at + _IRIS_VALUES].reshape(2, IRIS_POINTS, 2).copy() if row[6] else None
        box = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
        faces.append(Face(box=box, score=float(row[4]), keypoints=keypoints, landmarks=landmarks, irises=irises))
    return faces


def _rounded(points: np.ndarray) -> list:
    return np.round(np.asarray(points, dtype=np.float64), 1).tolist()


def scaled(face: Face, sx: float, sy: float) -> Face:
    """The face in pixels of an image ``sx`` x ``sy`` times as large (z of the landmarks scales with x)."""
    factor = np.array([sx, sy], dtype=np.float32)
    x, y, w, h = face.box
    landmarks = None if face.landmarks is None else face.landmarks * np.array([sx, sy, sx], dtype=np.float32)
    return Face(box=(x * sx, y * sy, w * sx, h * sy), score=face.score, keypoints=face.keypoints * factor,
                landmarks=landmarks, irises=None if face.irises is None else face.irises * factor)


def faces_json(faces: list[Face]) -> list[dict]:
    """Faces for apps that draw their own shapes, in photo pixels rounded to 0.1: ``box`` [x, y, w, h],
    ``score``, ``keypoints`` [[x, y] * 6], ``landmarks`` [[x, y] * 468] and ``irises`` (the subject's right eye,
    then left: [[x, y] * 5] each, the centre first); landmarks and irises are null when not found."""
    return [{
        "box": _rounded(face.box),
        "score": round(face.score, 3),
        "keypoints": _rounded(face.keypoints),
        "landmarks": None if face.landmarks is None else _rounded(face.landmarks[:, :2]),
        "irises": None if face.irises is None else _rounded(face.irises),
    } for face in faces]


def detector_for(side: int, model: str) -> Detector:
    """The detector geometry of a detector network taking ``side`` x ``side`` pixels (``model`` names it)."""
    if side not in DETECTORS:
        raise ValueError(f"the detector {model!r} takes {side} px; imaging.faces knows detectors of "
                         f"{sorted(DETECTORS)} px")
    return DETECTORS[side]


# A face network's run: (role, input tensors one per row, output names) -> the outputs, batch axis first. The
# roles are "detector", "landmarks" and "irises" (Product.face_models, in that order).
RunNetwork = Callable[[str, list[np.ndarray], list[str]], list[np.ndarray]]


def find_faces(rgb: np.ndarray, run: RunNetwork, detector: Detector, max_faces: int) -> list[Face]:
    """The largest ``max_faces`` faces of the photo whose landmark crop the landmark network confirms, with their
    landmarks and irises: the detector on the letterboxed photo, then every face's upright crop in one run, then
    both eyes of every face in one run. ``run`` says where the networks run (Triton, or ONNX Runtime inline)."""
    tensor, letterbox = detector_input(rgb, detector)
    regressors, scores = run("detector", [tensor], ["regressors", "scores"])
    faces = decode_detections(regressors[0], scores[0], letterbox, detector=detector)
    faces = sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)[:max_faces]
    if not faces:
        return []
    crops = [landmark_crop(face, rgb) for face in faces]
    raw, flags = run("landmarks", [crop for crop, _ in crops], ["landmarks", "face_flag"])
    kept = [dataclasses.replace(face, landmarks=landmarks_from(points, affine))
            for face, (_, affine), points, flag in zip(faces, crops, raw, flags, strict=True) if face_present(flag)]
    if not kept:
        return []
    eyes = [eye_crops(face.landmarks, rgb) for face in kept]
    contours, irises = run("irises", [t for tensors, _, _ in eyes for t in tensors], ["eye_contour", "iris"])
    return [dataclasses.replace(face, irises=irises_from(contours[2 * i:2 * i + 2], irises[2 * i:2 * i + 2], affines))
            for i, (face, (_, affines, _)) in enumerate(zip(kept, eyes, strict=True))]
