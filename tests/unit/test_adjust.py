"""Subject/backdrop tone adjustments (imaging/adjust.py) on real photos and grey ramps."""

import numpy as np
import pytest
import skimage.data

from imaging.adjust import Tone, adjust, apply_tone, brightness_curve, depth_ramp, tone_lut

GREYS = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (4, 1, 3))  # every grey level, 4 x 256
REC709 = np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage.data.astronaut()[::2, ::2].copy()  # 256 x 256


def disc_weight(shape: tuple[int, ...]) -> np.ndarray:
    y, x = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    return np.clip(60.5 - np.hypot(x - shape[1] / 2, y - shape[0] / 2), 0.0, 1.0).astype(np.float32)


SUBJECT, BACKDROP = Tone(brightness=0.3, contrast=0.2, saturation=0.4), Tone(brightness=-0.4, saturation=-0.8)


def test_weight_one_applies_only_the_foreground_tone_and_zero_only_the_background(photo: np.ndarray) -> None:
    fore, back = apply_tone(photo, SUBJECT), apply_tone(photo, BACKDROP)
    assert not np.array_equal(fore, back)
    ones, zeros = np.ones(photo.shape[:2], np.float32), np.zeros(photo.shape[:2], np.float32)
    assert np.array_equal(adjust(photo, ones, SUBJECT, BACKDROP), fore)
    assert np.array_equal(adjust(photo, zeros, SUBJECT, BACKDROP), back)
    # a matte: each side exactly its own tone, the soft edge between the two
    weight = disc_weight(photo.shape)
    out = adjust(photo, weight, SUBJECT, BACKDROP)
    assert np.array_equal(out[weight == 1], fore[weight == 1])
    assert np.array_equal(out[weight == 0], back[weight == 0])
    edge = (weight > 0) & (weight < 1)
    low, high = np.minimum(fore, back)[edge], np.maximum(fore, back)[edge]
    assert edge.sum() > 100 and np.all((out[edge] >= low) & (out[edge] <= high))
    half = np.full(photo.shape[:2], 0.5, np.float32)
    middle = (fore.astype(int) + back) / 2
    assert np.abs(adjust(photo, half, SUBJECT, BACKDROP) - middle).max() <= 1


def test_the_neutral_tone_leaves_the_photo_unchanged_exactly(photo: np.ndarray) -> None:
    weight = disc_weight(photo.shape)
    out = adjust(photo, weight, Tone(), Tone())
    assert np.array_equal(out, photo) and out is not photo
    assert np.array_equal(tone_lut(Tone()), np.arange(256))
    # the same tone on both sides: the weight does not matter
    same = Tone(brightness=0.2)
    assert np.array_equal(adjust(photo, weight, same, same), apply_tone(photo, same))


def test_saturation_minus_one_gives_grey_at_the_rec709_luma(photo: np.ndarray) -> None:
    grey = apply_tone(photo, Tone(saturation=-1.0))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert np.abs(grey[..., 0] - photo @ REC709).max() <= 1
    chroma = np.ptp(photo.astype(int), axis=2).mean()
    assert np.ptp(apply_tone(photo, Tone(saturation=0.5)).astype(int), axis=2).mean() > 1.3 * chroma
    assert np.ptp(apply_tone(photo, Tone(saturation=-0.5)).astype(int), axis=2).mean() < 0.6 * chroma


def test_brightness_is_monotone_and_takes_mid_grey_near_white_and_near_black(photo: np.ndarray) -> None:
    steps = np.linspace(-1, 1, 9)
    curves = np.array([tone_lut(Tone(brightness=b)).astype(int) for b in steps])
    assert np.all(np.diff(curves, axis=1) >= 0)  # each curve keeps the order of grey levels
    assert np.all(np.diff(curves, axis=0) >= 0)  # and more brightness never darkens a level
    assert np.all(np.diff(curves[:, 128]) > 0)  # mid-grey strictly
    assert curves[-1, 128] >= 240 and curves[0, 128] <= 15
    assert brightness_curve(np.array(0.5), 1.0) == pytest.approx(0.95)  # as documented
    assert brightness_curve(np.array(0.5), -1.0) == pytest.approx(0.05)
    assert curves[-1, 0] == 0 and curves[0, 255] == 255  # black and white stay
    means = [apply_tone(photo, Tone(brightness=b)).mean() for b in steps]
    assert np.all(np.diff(means) > 0)


def test_contrast_is_monotone_around_mid_grey_an_s_curve_up_and_a_fade_down(photo: np.ndarray) -> None:
    steps = np.linspace(-1, 1, 9)
    curves = np.array([tone_lut(Tone(contrast=c)).astype(int) for c in steps])
    assert np.all(np.diff(curves, axis=1) >= 0)  # monotone in the grey level
    assert np.all(np.diff(curves[:, :120], axis=0) <= 0)  # more contrast: darks darker ...
    assert np.all(np.diff(curves[:, 136:], axis=0) >= 0)  # ... lights lighter
    assert np.all(np.abs(curves[:, 128] - 128) <= 1)  # around mid-grey
    assert curves[-1, 96] < 80 and curves[0, 96] > 110
    assert curves[-1, 0] == 0 and curves[-1, 255] == 255  # raised: an S-curve, black and white stay
    assert curves[0, 0] == 85 and curves[0, 255] == 170  # lowered to -1: faded evenly into [1/3, 2/3]
    assert np.diff(curves[0]).max() <= 1  # no jumps between neighbouring levels (no banding)
    spreads = [apply_tone(photo, Tone(contrast=c)).std() for c in steps]
    assert np.all(np.diff(spreads) > 0)


def test_the_curves_act_on_every_channel_alike() -> None:
    out = apply_tone(GREYS, Tone(brightness=0.5, contrast=0.5))
    assert np.array_equal(out[..., 0], out[..., 2]) and np.array_equal(out[0, :, 0], tone_lut(Tone(0.5, 0.5)))


def test_depth_ramp_is_one_from_start_zero_to_end_and_smooth_between() -> None:
    nearness = np.linspace(0, 1, 1001, dtype=np.float32)[None, :]
    ramp = depth_ramp(nearness, start=0.7, end=0.3)[0]
    assert ramp.dtype == np.float32
    assert np.all(ramp[nearness[0] >= 0.7] == 1.0) and np.all(ramp[nearness[0] <= 0.3] == 0.0)
    assert ramp[500] == pytest.approx(0.5)
    assert np.all(np.diff(ramp) >= 0)
    # no kink at the ends: a step of 1 % of the ramp changes the weight by about 3 t^2 = 0.0003
    assert ramp[304] < 0.001 and ramp[696] > 0.999


def test_a_depth_ramp_tones_near_and_far_apart(photo: np.ndarray) -> None:
    nearness = np.tile(np.linspace(0, 1, photo.shape[0], dtype=np.float32)[:, None], (1, photo.shape[1]))
    out = adjust(photo, depth_ramp(nearness, 0.8, 0.2), Tone(brightness=0.5), Tone(brightness=-0.5))
    rows = photo.shape[0]
    assert np.array_equal(out[-rows // 10:], apply_tone(photo, Tone(brightness=0.5))[-rows // 10:])
    assert np.array_equal(out[:rows // 10], apply_tone(photo, Tone(brightness=-0.5))[:rows // 10])


@pytest.mark.parametrize("settings", [{"brightness": 1.5}, {"contrast": -2.0}, {"saturation": float("nan")}])
def test_tone_settings_outside_minus_one_to_one_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        Tone(**settings)


def test_bad_arrays_and_ramps_are_refused(photo: np.ndarray) -> None:
    weight = np.ones(photo.shape[:2], np.float32)
    with pytest.raises(ValueError, match="rgb must be uint8"):
        adjust(photo.astype(np.float32), weight, Tone(), Tone())
    with pytest.raises(ValueError, match="weight is"):
        adjust(photo, weight[:-1], Tone(), Tone())
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        adjust(photo, weight * 2, Tone(), Tone())
    with pytest.raises(ValueError, match="Tone"):
        adjust(photo, weight, Tone(), None)
    with pytest.raises(ValueError, match="end < start"):
        depth_ramp(weight, start=0.3, end=0.6)
    with pytest.raises(ValueError, match="start"):
        depth_ramp(weight, start=1.5, end=0.6)
