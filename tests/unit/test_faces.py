"""Face geometry (imaging/faces.py) and face layers (imaging/face_layers.py) on synthetic inputs."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from imaging import face_layers as fl
from imaging import faces as fc


def test_anchors_cover_both_grids_in_output_order() -> None:
    anchors = fc.ssd_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[:4], [[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(anchors[511], [31 / 32, 31 / 32])
    np.testing.assert_allclose(anchors[512:519], [[1 / 16, 1 / 16]] * 6 + [[3 / 16, 1 / 16]])
    np.testing.assert_allclose(anchors[-1], [15 / 16, 15 / 16])


def test_full_range_anchors_are_one_per_cell_of_a_48_grid() -> None:
    anchors = fc.ssd_anchors(fc.FULL_RANGE)
    assert anchors.shape == (2304, 2) == (fc.FULL_RANGE.num_anchors, 2)
    np.testing.assert_allclose(anchors[:2], [[1 / 96, 1 / 96], [3 / 96, 1 / 96]])
    np.testing.assert_allclose(anchors[48], [1 / 96, 3 / 96])  # the second row
    np.testing.assert_allclose(anchors[-1], [95 / 96, 95 / 96])
    assert fc.DETECTORS == {128: fc.SHORT_RANGE, 192: fc.FULL_RANGE}
    assert (fc.DETECTOR_SIZE, fc.NUM_ANCHORS) == (128, 896)  # the short-range names kept for older callers


def test_full_range_input_is_192_and_decodes_in_its_pixels() -> None:
    photo = np.full((300, 600, 3), 200, dtype=np.uint8)
    tensor, affine = fc.detector_input(photo, fc.FULL_RANGE)
    assert tensor.shape == (3, 192, 192)
    np.testing.assert_allclose(fc.apply_affine(affine, [[0, 0], [192, 192]]), [[0, -150], [600, 450]])
    regressors = np.zeros((2304, 16), dtype=np.float32)
    scores = np.full((2304, 1), -50.0, dtype=np.float32)
    anchor = 20 * 48 + 30  # row 20, column 30: centre (122, 82) of the 192 input
    regressors[anchor, :4] = [2.0, -2.0, 24.0, 12.0]
    regressors[anchor, 4:] = np.tile([2.0, -2.0], 6)
    scores[anchor] = 0.3  # sigmoid 0.574: below full range's 0.6, above short range's 0.5
    assert fc.decode_detections(regressors, scores, affine, detector=fc.FULL_RANGE) == []
    scores[anchor] = 1.0
    (face,) = fc.decode_detections(regressors, scores, affine, detector=fc.FULL_RANGE)
    scale = 600 / 192
    np.testing.assert_allclose(face.box, [(124 - 12) * scale, (80 - 6) * scale - 150, 24 * scale, 12 * scale],
                               atol=1e-4)
    np.testing.assert_allclose(face.keypoints, np.tile([124 * scale, 80 * scale - 150], (6, 1)), atol=1e-3)
    scores[anchor] = 0.3
    (found,) = fc.decode_detections(regressors, scores, affine, min_score=0.55, detector=fc.FULL_RANGE)
    assert found.score == pytest.approx(1 / (1 + math.exp(-0.3)))  # a given min_score wins over the detector's
    with pytest.raises(ValueError, match=r"regressors must have shape \(2304, 16\).*face_detection_full_range"):
        fc.decode_detections(regressors[:896], scores[:896], affine, detector=fc.FULL_RANGE)


def test_letterbox_centres_the_photo_between_black_bars_and_maps_back() -> None:
    photo = np.full((200, 400, 3), 128, dtype=np.uint8)
    photo[120:124, 300:304] = 255  # a white dot centred at (302, 122)
    tensor, affine = fc.detector_input(photo)
    assert tensor.shape == (3, 128, 128) and tensor.dtype == np.float32
    # 400 wide: the square of 400 starts 100 above the photo, so bars of 32 tensor rows at the top and bottom
    assert np.all(tensor[:, :30] == -1.0) and np.all(tensor[:, -30:] == -1.0)
    assert abs(float(tensor[0, 64, 10]) - (128 - 127.5) / 127.5) < 1e-6
    np.testing.assert_allclose(fc.apply_affine(affine, [[0, 0], [128, 128]]), [[0, -100], [400, 300]])
    row, col = np.unravel_index(np.argmax(tensor[0]), tensor[0].shape)
    back = fc.apply_affine(affine, [[col + 0.5, row + 0.5]])[0]
    assert np.all(np.abs(back - (302, 122)) <= 400 / 128)


def _detector_outputs(hits: dict[int, tuple[list[float], float]]) -> tuple[np.ndarray, np.ndarray]:
    """Regressors and score logits with the given anchors firing: anchor -> ([dx, dy, w, h], logit)."""
    regressors = np.zeros((1, 896, 16), dtype=np.float32)
    scores = np.full((1, 896, 1), -50.0, dtype=np.float32)
    for anchor, (box, logit) in hits.items():
        regressors[0, anchor, :4] = box
        regressors[0, anchor, 4:] = np.tile(box[:2], 6)  # keypoints at the box centre
        scores[0, anchor, 0] = logit
    return regressors, scores


def test_decoding_merges_overlapping_boxes_by_score_and_keeps_separate_ones() -> None:
    photo = np.zeros((256, 256, 3), dtype=np.uint8)
    _, affine = fc.detector_input(photo)  # square photo: tensor pixel x 2
    anchors = fc.ssd_anchors()
    # anchors 0 and 2 are neighbouring cells at (4, 4) and (12, 4) of the 128 grid; 600 is far away
    far = 600
    regressors, scores = _detector_outputs({
        0: ([4.0, 4.0, 30.0, 30.0], 3.0),  # centre (8, 8), sigmoid 0.953
        2: ([-4.0, 4.0, 30.0, 30.0], 1.0),  # centre (8, 8) too: merged, weight 0.731
        far: ([0.0, 0.0, 20.0, 20.0], 2.0),
    })
    faces = fc.decode_detections(regressors, scores, affine)
    assert len(faces) == 2
    best, other = faces
    assert best.score == pytest.approx(1 / (1 + math.exp(-3)))
    np.testing.assert_allclose(best.box, [(8 - 15) * 2, (8 - 15) * 2, 60, 60], atol=1e-4)
    centre = anchors[far] * 128 * 2
    np.testing.assert_allclose(other.box, [centre[0] - 20, centre[1] - 20, 40, 40], atol=1e-4)
    np.testing.assert_allclose(other.keypoints, np.tile(centre, (6, 1)), atol=1e-4)
    assert fc.decode_detections(regressors, scores, affine, min_score=0.96) == []


def test_weighted_nms_averages_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float64)
    keypoints = np.zeros((3, 6, 2))
    keypoints[1] += 4.0
    merged = fc.weighted_nms(boxes, keypoints, np.array([0.9, 0.6, 0.8]))
    assert [score for _, _, score in merged] == [0.9, 0.8]
    np.testing.assert_allclose(merged[0][0], [0.4, 0, 10.4, 10])
    np.testing.assert_allclose(merged[0][1], np.full((6, 2), 1.6))
    np.testing.assert_allclose(merged[1][0], boxes[2])


def _face(centre: tuple[float, float] = (200.0, 150.0), size: float = 100.0, roll_degrees: float = 0.0) -> fc.Face:
    """A detection with its eye keypoints rolled by ``roll_degrees`` (clockwise on screen)."""
    angle = math.radians(roll_degrees)
    axis = np.array([math.cos(angle), math.sin(angle)])
    keypoints = np.tile(np.asarray(centre, dtype=np.float64), (6, 1))
    keypoints[0] -= axis * size / 4
    keypoints[1] += axis * size / 4
    box = (centre[0] - size / 2, centre[1] - size / 2, size, size)
    return fc.Face(box=box, score=0.9, keypoints=keypoints.astype(np.float32))


def test_landmark_crop_turns_the_face_upright_and_projects_back() -> None:
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    face = _face(roll_degrees=30)
    # a dot on the line through the eyes, right of the centre: it must land right of the crop's centre, level
    dot = np.array([200.0, 150.0]) + 40 * np.array([math.cos(math.radians(30)), math.sin(math.radians(30))])
    photo[int(dot[1]) - 2:int(dot[1]) + 2, int(dot[0]) - 2:int(dot[0]) + 2] = 255
    crop, affine = fc.landmark_crop(face, photo)
    assert crop.shape == (3, 192, 192) and 0 <= crop.min() and crop.max() <= 1
    rows, cols = np.nonzero(crop[0] > 0.5)
    assert abs(rows.mean() - 96) < 2 and cols.mean() > 96 + 40 * 192 / 150 - 3
    assert fc.apply_affine(affine, [[96, 96]])[0] == pytest.approx((200, 150))
    raw = np.zeros(1404, dtype=np.float32)
    raw[0:3] = (cols.mean() + 0.5, rows.mean() + 0.5, 10.0)
    landmarks = fc.landmarks_from(raw, affine)
    assert landmarks.shape == (468, 3)
    assert np.linalg.norm(landmarks[0, :2] - dot) < 1.5
    assert landmarks[0, 2] == pytest.approx(10 * 150 / 192, rel=1e-5)  # z in photo pixels


def test_face_flag_is_a_logit() -> None:
    assert fc.face_present(np.array([[2.0]])) and not fc.face_present(-0.1)
    with pytest.raises(ValueError, match="one logit per face"):
        fc.face_present(np.zeros(2))


def _synthetic_landmarks(centre: tuple[float, float] = (200.0, 150.0), size: float = 100.0) -> np.ndarray:
    """468 points with each outline of imaging/face_layers.py laid out as an ellipse where a face has it."""
    cx, cy = centre
    points = np.zeros((468, 3), dtype=np.float32)
    points[:, :2] = centre

    def ellipse(indices: tuple[int, ...], x: float, y: float, rx: float, ry: float, start: float = -90) -> None:
        angles = np.radians(start + np.arange(len(indices)) * 360 / len(indices))
        points[list(indices), 0] = cx + size * (x + rx * np.cos(angles))
        points[list(indices), 1] = cy + size * (y + ry * np.sin(angles))

    ellipse(fl.FACE_OVAL, 0, 0, 0.45, 0.55)
    ellipse(fl.RIGHT_EYE, -0.18, -0.1, 0.08, 0.03, start=180)
    ellipse(fl.LEFT_EYE, 0.18, -0.1, 0.08, 0.03, start=0)
    ellipse(fl.RIGHT_BROW, -0.18, -0.22, 0.1, 0.025, start=180)
    ellipse(fl.LEFT_BROW, 0.18, -0.22, 0.1, 0.025, start=0)
    ellipse(fl.LIPS_OUTER, 0, 0.28, 0.16, 0.07, start=180)
    ellipse(fl.LIPS_INNER, 0, 0.28, 0.12, 0.025, start=180)
    return points


def _synthetic_irises(landmarks: np.ndarray) -> np.ndarray:
    irises = np.zeros((2, 5, 2), dtype=np.float32)
    for eye, loop in enumerate((fl.RIGHT_EYE, fl.LEFT_EYE)):
        centre = landmarks[list(loop), :2].mean(axis=0)
        irises[eye] = centre + np.array([[0, 0], [4, 0], [0, -4], [-4, 0], [0, 4]])
    return irises


def _box_mask(box: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
    x, y, w, h = box
    mask = np.zeros(shape, dtype=bool)
    mask[max(int(y), 0):int(math.ceil(y + h)), max(int(x), 0):int(math.ceil(x + w))] = True
    return mask


def test_layers_of_a_synthetic_mesh_sit_where_the_parts_are() -> None:
    landmarks = _synthetic_landmarks()
    face = replace(_face(size=120), landmarks=landmarks, irises=_synthetic_irises(landmarks))
    layers = fl.face_layers([face], size=(400, 300))
    assert set(layers) == set(fl.LAYERS)
    inside = _box_mask(face.box, (300, 400))
    for name in ("face", "eyes", "irises", "brows", "lips", "mouth"):
        layer = layers[name]
        assert layer.dtype == np.uint8 and layer.shape == (300, 400)
        assert layer.max() == 255, name
        assert not layer[~inside].any(), f"{name} leaves the face box"
        assert np.any((layer > 0) & (layer < 255)), f"{name} has no anti-aliased edge"
    rows = {name: np.nonzero(layers[name].max(axis=1))[0].mean() for name in layers if layers[name].any()}
    assert rows["brows"] < rows["eyes"] < rows["lips"]
    assert np.all(layers["irises"] <= layers["eyes"])
    assert np.all(layers["face"][layers["eyes"] == 255] == 0)
    assert np.all(layers["face"][layers["mouth"] == 255] == 0)
    assert np.all(layers["lips"][layers["mouth"] == 255] == 0)
    assert not layers["hair"].any()  # no matte, no hair


def test_hair_is_the_matte_above_and_around_the_face_only() -> None:
    landmarks = _synthetic_landmarks()
    face = replace(_face(size=120), landmarks=landmarks)
    alpha = np.ones((300, 400), dtype=np.float32)
    layers = fl.face_layers([face], size=(400, 300), person_alpha=alpha)
    hair = layers["hair"]
    assert hair.any()
    oval = fl.face_layers([face], size=(400, 300))["face"]
    assert not np.any((hair == 255) & (oval > 0))
    rows, cols = np.nonzero(hair)
    assert rows.min() < face.box[1] - 0.5 * face.box[3]  # well above the face
    assert rows.max() < face.box[1] + face.box[3] + 2  # the window ends at the box bottom
    below_chin = hair[int(landmarks[152, 1]) + 5:, int(landmarks[152, 0]) - 10:int(landmarks[152, 0]) + 10]
    assert not below_chin.any()  # the neck is not hair
    assert not fl.face_layers([face], size=(400, 300), person_alpha=np.zeros_like(alpha))["hair"].any()


def test_layers_scale_from_the_photo_to_the_output_size() -> None:
    face = replace(_face(size=120), landmarks=_synthetic_landmarks())
    full = fl.face_layers([face], size=(400, 300))["face"].astype(int)
    half = fl.face_layers([face], size=(200, 150), photo_size=(400, 300))["face"].astype(int)
    assert abs(full.sum() / 4 - half.sum()) < 0.05 * half.sum()
    rows, cols = np.nonzero(half)
    assert abs(rows.mean() - 75) < 2 and abs(cols.mean() - 100) < 2


def test_no_faces_and_faces_without_landmarks_give_zero_layers() -> None:
    alpha = np.ones((30, 40), dtype=np.float32)
    for faces in ([], [_face(centre=(20, 15), size=10)]):
        layers = fl.face_layers(faces, size=(40, 30), person_alpha=alpha)
        assert set(layers) == set(fl.LAYERS)
        assert all(layer.shape == (30, 40) and not layer.any() for layer in layers.values())


def test_eye_crops_mirror_the_subjects_left_eye() -> None:
    landmarks = _synthetic_landmarks()
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    tensors, affines, flipped = fc.eye_crops(landmarks, photo)
    assert tensors.shape == (2, 3, 64, 64) and affines.shape == (2, 2, 3)
    assert flipped.tolist() == [False, True]
    for eye, (start, end) in enumerate(fc.EYE_CORNERS):
        left_edge, right_edge = fc.apply_affine(affines[eye], [[0, 32], [64, 32]])
        mid = (landmarks[start, :2] + landmarks[end, :2]) / 2
        assert np.allclose((left_edge + right_edge) / 2, mid)
        assert (left_edge[0] > right_edge[0]) == flipped[eye]
    iris = np.tile([32.0, 32.0, 0.0], (2, 5)).reshape(2, 15)
    iris[:, 3] += 5.0  # in each crop, rim point 1 five pixels right of the centre and point 3 five left
    iris[:, 9] -= 5.0
    irises = fc.irises_from(np.zeros((2, 213)), iris, affines)
    assert irises.shape == (2, 5, 2)
    assert np.all(irises[:, 1, 0] > irises[:, 0, 0])  # in the photo, both eyes' point 1 lies to the right
    assert np.all(irises[:, 3, 0] < irises[:, 0, 0])


def test_pack_round_trip_and_json() -> None:
    landmarks = _synthetic_landmarks()
    with_all = replace(_face(), landmarks=landmarks, irises=_synthetic_irises(landmarks))
    bare = _face(centre=(50, 60), size=30)
    packed = fc.pack([with_all, bare])
    assert packed.shape == (8, fc.FACE_VALUES) and packed.dtype == np.float32
    assert not packed[2:].any()
    first, second = fc.unpack(packed)
    assert first.box == pytest.approx(with_all.box) and first.score == pytest.approx(0.9)
    np.testing.assert_allclose(first.landmarks, landmarks)
    np.testing.assert_allclose(first.irises, with_all.irises)
    np.testing.assert_allclose(second.keypoints, bare.keypoints)
    assert second.landmarks is None and second.irises is None
    assert fc.unpack(fc.pack([])) == []
    assert len(fc.unpack(fc.pack([bare] * 10, max_faces=3))) == 3
    described = fc.faces_json([with_all, bare])
    assert described[0]["box"] == [150.0, 100.0, 100.0, 100.0]
    assert len(described[0]["landmarks"]) == 468 and len(described[0]["landmarks"][0]) == 2
    assert described[0]["landmarks"][10] == [round(float(landmarks[10, 0]), 1), round(float(landmarks[10, 1]), 1)]
    assert np.array(described[0]["irises"]).shape == (2, 5, 2)
    assert described[1]["landmarks"] is None and described[1]["irises"] is None


@pytest.mark.parametrize(("call", "message"), [
    (lambda: fc.decode_detections(np.zeros((896, 12)), np.zeros(896), np.eye(2, 3)), "regressors must have shape"),
    (lambda: fc.decode_detections(np.zeros((896, 16)), np.zeros(895), np.eye(2, 3)), "scores must have 896"),
    (lambda: fc.decode_detections(np.zeros((896, 16)), np.zeros(896), np.eye(3)), r"transform must have shape"),
    (lambda: fc.decode_detections(np.zeros((896, 16)), np.zeros(896), np.eye(2, 3), min_score=1.5), "min_score"),
    (lambda: fc.detector_input(np.zeros((10, 10), dtype=np.uint8)), r"8-bit RGB array of shape \(H, W, 3\)"),
    (lambda: fc.detector_input(np.zeros((10, 10, 3), dtype=np.float32)), "8-bit RGB"),
    (lambda: fc.detector_input(np.zeros((10, 10, 3), dtype=np.uint8), detector=192), "must be an imaging.faces.Det"),
    (lambda: fc.ssd_anchors(detector="full"), "SHORT_RANGE or FULL_RANGE"),
    (lambda: replace(fc.FULL_RANGE, min_score=0.0), "min score and IoU threshold in \\(0, 1\\)"),
    (lambda: replace(fc.FULL_RANGE, strides=()), "needs a size, strides and anchors per layer of at least 1"),
    (lambda: fc.landmarks_from(np.zeros(1400), np.eye(2, 3)), "1404 values"),
    (lambda: fc.eye_crops(np.zeros((478, 3)), np.zeros((9, 9, 3), np.uint8)), r"landmarks must have shape \(468, 3\)"),
    (lambda: fc.irises_from(np.zeros((2, 213)), np.zeros((2, 10)), np.zeros((2, 2, 3))), r"iris must have shape"),
    (lambda: fc.Face(box=(0, 0, 1, 1), score=0.9, keypoints=np.zeros((5, 2))), r"keypoints must have shape \(6, 2\)"),
    (lambda: fc.Face(box=(0, 0, -1, 1), score=0.9, keypoints=np.zeros((6, 2))), "sizes >= 0"),
    (lambda: fc.pack([_face()], max_faces=0), "max_faces must be at least 1"),
    (lambda: fc.pack([replace(_face(), score=0.0)]), "score above 0"),
    (lambda: fc.unpack(np.zeros((8, 100))), f"shape \\(max_faces, {fc.FACE_VALUES}\\)"),
    (lambda: fl.face_layers([], size=(0, 5)), "at least 1 pixel"),
    (lambda: fl.face_layers([], size=(4, 5), person_alpha=np.zeros((4, 5), np.float32)), "resize the matte"),
    (lambda: fl.face_layers([], size=(4, 5), person_alpha=np.zeros((5, 4), np.uint8)), "must be float"),
])
def test_bad_input_says_what_is_wrong(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
