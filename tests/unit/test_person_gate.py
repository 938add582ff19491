"""The person gate (imaging.person_gate): a second subject far from the person goes, the person's edges stay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from contract.schema import ContractError, Variant
from imaging.person_gate import REACH, person_gate


def disc(size: int, centre: tuple[int, int], radius: int, soft: float = 0.0) -> np.ndarray:
    plane = np.zeros((size, size), np.float32)
    cv2.circle(plane, centre, radius, 1.0, -1)
    return cv2.GaussianBlur(plane, (0, 0), soft) if soft else plane


def test_a_second_subject_far_from_the_person_is_cleared_and_the_person_kept_with_its_soft_edge() -> None:
    person_and_cat = np.maximum(disc(512, (128, 300), 90, soft=4), disc(512, (400, 150), 80, soft=4))
    segmenter = disc(256, (64, 150), 40)  # the person only, coarse and a little small (as MediaPipe's is)
    gated = person_gate(person_and_cat, segmenter)
    assert gated.shape == person_and_cat.shape and gated.dtype == np.float32
    assert gated[150, 400] == 0.0 and gated[150, 400 - 60] == 0.0  # the cat, centre and edge
    np.testing.assert_allclose(gated[300, 128], person_and_cat[300, 128], atol=1e-6)  # the person
    edge = (slice(300 - 2, 300 + 3), slice(128 + 88, 128 + 93))  # the soft rim, beyond the segmenter's 80 px
    np.testing.assert_allclose(gated[edge], person_and_cat[edge], atol=1e-6)


def test_the_gate_reaches_a_fixed_fraction_of_the_matte_beyond_the_person() -> None:
    everywhere = np.ones((400, 400), np.float32)
    segmenter = np.zeros((400, 400), np.float32)
    segmenter[:, :100] = 1.0
    row = person_gate(everywhere, segmenter)[200]
    reach = round(REACH * 400)
    assert row[:100].min() == 1.0
    assert 0.0 < row[100 + reach // 2] <= 1.0 and row[100 + reach + reach:].max() == 0.0


def test_a_photo_where_the_segmenter_sees_no_person_keeps_its_matte() -> None:
    matte = disc(512, (256, 256), 100, soft=3)
    np.testing.assert_array_equal(person_gate(matte, np.full((256, 256), 0.1, np.float32)), matte)


def test_the_gate_refuses_mattes_that_are_not_planes() -> None:
    with pytest.raises(ValueError, match="two 2-D mattes"):
        person_gate(np.zeros((1, 1, 64, 64), np.float32), np.zeros((64, 64), np.float32))


@pytest.mark.parametrize(("fields", "message"), [
    ({"subject": "object", "gate": "matte_fast"}, "subject 'person' or by_faces"),
    ({"subject": "person", "gate": "matte_portrait"}, "one of its own mattes"),
])
def test_a_gate_is_declared_only_on_a_person_matte_and_never_on_itself(fields: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        Variant("v", ("matte_portrait",), "a variant", **fields)
