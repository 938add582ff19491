"""Face and face-part layers (8-bit masks) drawn from FaceMesh landmarks, and the outlines they are drawn from.

The outlines are closed loops of FaceMesh landmark indices (468-point topology), each running once around its
part: the face oval, each eye opening (upper and lower lid), each brow, and the lips' outer and inner edges.
"Right" and "left" are the subject's: in a photo (not a mirrored selfie) the subject's right eye is on the left.
"""

from __future__ import annotations

import cv2
import numpy as np

from contract.product import FACE_LAYER_NAMES
from imaging.faces import Face

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
JAW = FACE_OVAL[FACE_OVAL.index(454):FACE_OVAL.index(234) + 1]  # cheek to cheek under the chin
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
LAYERS = FACE_LAYER_NAMES  # the product's names (contract/product.py)

# The hair window in face boxes, in the face's own frame (rolled with the eyes): beside, above and below the box
_HAIR_SIDE, _HAIR_ABOVE, _HAIR_BELOW = 0.6, 1.0, 0.0
_SHIFT = 4  # sub-pixel bits for OpenCV's anti-aliased fill


def _fill(shape: tuple[int, int], loops: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the union of polygons given in continuous pixel coordinates."""
    canvas = np.zeros(shape, dtype=np.uint8)
    fixed = [np.round((loop - 0.5) * (1 << _SHIFT)).astype(np.int32) for loop in loops]
    cv2.fillPoly(canvas, fixed, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255


def _disc(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8)
    point = tuple(int(v) for v in np.round((centre - 0.5) * (1 << _SHIFT)))
    cv2.circle(canvas, point, int(round(radius * (1 << _SHIFT))), 255, -1, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255


def _hair_regions(face: Face, points: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hair window and the region under the jaw to leave out (the neck), as polygons in output pixels."""
    across = points[263, :2] - points[33, :2]
    across /= max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]])
    x, y, width, height = face.box
    centre = np.array([x + width / 2, y + height / 2]) * scale
    half_w, half_h = width * scale[0] * (0.5 + _HAIR_SIDE), height * scale[1] * 0.5
    top, bottom = -(half_h + height * scale[1] * _HAIR_ABOVE), half_h + height * scale[1] * _HAIR_BELOW
    window = np.array([centre + across * sx + down * sy
                       for sx, sy in ((-half_w, top), (half_w, top), (half_w, bottom), (-half_w, bottom))])
    jaw = points[list(JAW), :2]
    reach = down * (bottom - top)
    neck = np.concatenate([jaw, [jaw[-1] + reach, jaw[0] + reach]])
    return window, neck


def _face_parts(points: np.ndarray, irises: np.ndarray | None, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """One face's part coverages in [0, 1] on a canvas of ``shape``, from landmarks in canvas pixels."""
    def loop(indices: tuple[int, ...]) -> np.ndarray:
        return points[list(indices), :2]

    oval = _fill(shape, [loop(FACE_OVAL)])
    eyes = _fill(shape, [loop(RIGHT_EYE), loop(LEFT_EYE)])
    brows = _fill(shape, [loop(RIGHT_BROW), loop(LEFT_BROW)])
    outer, inner = _fill(shape, [loop(LIPS_OUTER)]), _fill(shape, [loop(LIPS_INNER)])
    iris = np.zeros(shape, dtype=np.float32)
    if irises is not None:
        for eye in irises:
            radius = float(np.linalg.norm(eye[1:] - eye[0], axis=1).mean())
            iris = np.maximum(iris, _disc(shape, eye[0], radius))
    return {
        "face": np.clip(oval - eyes - brows - outer, 0, 1),
        "eyes": eyes,
        "irises": np.minimum(iris, eyes),
        "brows": brows,
        "lips": np.clip(outer - inner, 0, 1),
        "mouth": inner,
        "oval": oval,
    }


def _bounds(loops: list[np.ndarray], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) covering the loops, clipped to the canvas; None when nothing is inside."""
    every = np.concatenate(loops)
    x0, y0 = np.floor(every.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(every.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size[0]), min(y1, size[1])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _check_layer_inputs(size: tuple[int, int], person_alpha: np.ndarray | None,
                        photo_size: tuple[int, int] | None) -> np.ndarray:
    """The scale from photo to layer pixels, after checking face_layers' arguments."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"size must be (width, height) of at least 1 pixel, got {size}")
    photo_w, photo_h = photo_size or size
    if photo_w < 1 or photo_h < 1:
        raise ValueError(f"photo_size must be (width, height) of at least 1 pixel, got {photo_size}")
    if person_alpha is not None and (np.shape(person_alpha) != (height, width)
                                     or not np.issubdtype(np.asarray(person_alpha).dtype, np.floating)):
        raise ValueError(f"person_alpha must be float of shape (height, width) = {(height, width)}, got "
                         f"{np.asarray(person_alpha).dtype} {np.shape(person_alpha)}: resize the matte to the "
                         "layers' size")
    return np.array([width / photo_w, height / photo_h])


def face_layers(faces: list[Face], size: tuple[int, int], person_alpha: np.ndarray | None = None,
                photo_size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Layers named in ``LAYERS``, each 8-bit (height, width) for ``size`` = (width, height), anti-aliased.

    - ``face``: skin, the face oval less the eyes, brows and lips (with the mouth);
    - ``eyes``: the eye openings between the lids (irises included); ``irises``: the irises' discs where the lids
      show them; ``brows``; ``lips``: outer less inner lip edge; ``mouth``: the opening inside the lips (teeth and
      tongue where visible);
    - ``hair``, derived rather than learned: the person matte (``person_alpha``, float (height, width) in [0, 1])
      inside a window around each face, leaving out every face oval and the region under the jaw (the neck).
      The window turns with the face's roll, reaches 0.6 box widths beside the detection box and 1 box height
      above it, and ends at the box's bottom (about the chin), so that shoulders are not taken for hair; ears and
      a hat count as hair, hair below the chin does not. Without a matte
      the hair layer is all zero.

    ``faces`` are in pixels of ``photo_size`` (by default ``size``); faces without landmarks add nothing, faces
    without irises add no irises. No faces give all-zero layers (valid: nothing to mark).
    """
    scale = _check_layer_inputs(size, person_alpha, photo_size)
    width, height = size
    layers = {name: np.zeros((height, width), dtype=np.uint8) for name in (*LAYERS, "oval")}
    for face in faces:
        if face.landmarks is None:
            continue
        points = face.landmarks[:, :2].astype(np.float64) * scale
        irises = None if face.irises is None else face.irises.astype(np.float64) * scale
        loops = [points[list(FACE_OVAL)]]
        window = neck = None
        if person_alpha is not None:
            window, neck = _hair_regions(face, points, scale)
            loops.append(window)
        bounds = _bounds(loops, size)
        if bounds is None:
            continue
        x0, y0, x1, y1 = bounds
        origin = np.array([x0, y0])
        shape = (y1 - y0, x1 - x0)
        parts = _face_parts(points - origin, None if irises is None else irises - origin, shape)
        if window is not None:
            keep_out = np.maximum(parts["oval"], _fill(shape, [neck - origin]))
            parts["hair"] = person_alpha[y0:y1, x0:x1] * _fill(shape, [window - origin]) * (1 - keep_out)
        for name, part in parts.items():
            target = layers[name][y0:y1, x0:x1]
            np.maximum(target, np.round(np.clip(part, 0, 1) * 255).astype(np.uint8), out=target)
    oval = layers.pop("oval")
    hair = layers["hair"].astype(np.uint16) * (255 - oval)
    layers["hair"] = ((hair + 127) // 255).astype(np.uint8)
    return layers

