"""The edits end to end: the real gateway and Triton on composites with known alpha (``evaluation.composites``).

Each test would fail if its edit broke: the background shows where the true alpha is 0 and the photo where it
is 1, bokeh blurs the backdrop and not the focused plane, the crop keeps the subject, the fused depth puts the
subject in front on every composite, ``/v1/layers`` equals the separate calls, and every format decodes to the
PNG's pixels (exactly, or within a lossy tolerance).
"""

from __future__ import annotations

import base64
import io
from functools import cache

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from evaluation.composites import Composite, composites
from evaluation.depth import edge_alignment, regions

pytestmark = pytest.mark.e2e


@cache
def small_set() -> list[Composite]:
    return composites("small")  # both people over four backdrops


def astronaut() -> Composite:
    """The astronaut over grass: a busy backdrop, and a composite the portrait matte gets right (its IoU in
    evaluation/results.md); over the coffee cup the matte takes part of the cup for the person."""
    return next(c for c in small_set() if c.name.startswith("astronaut-mirrored-over-grass"))


def call(http: httpx.Client, route: str, composite: Composite, files: dict | None = None,
         **params: object) -> httpx.Response:
    if files is None:
        return http.post(route, content=composite.jpeg, params=params, headers={"Content-Type": "image/jpeg"})
    return http.post(route, params=params, files={"image": ("photo.jpg", composite.jpeg, "image/jpeg"), **files})


def image(response: httpx.Response, mode: str | None = None) -> np.ndarray:
    assert response.status_code == 200, response.text
    decoded = Image.open(io.BytesIO(response.content))
    return np.asarray(decoded.convert(mode) if mode else decoded)


def sure(alpha: np.ndarray, value: float, margin: int = 6) -> np.ndarray:
    """Pixels where the true alpha is ``value`` (0 or 1) and stays so ``margin`` pixels around."""
    region = (alpha >= 0.98) if value == 1 else (alpha <= 0.02)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.erode(region.astype(np.uint8), kernel).astype(bool)


def close_fraction(a: np.ndarray, b: np.ndarray, where: np.ndarray, tolerance: int) -> float:
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=-1)[where] <= tolerance).mean())


def sharpness(rgb: np.ndarray, where: np.ndarray) -> float:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.var(cv2.Laplacian(grey, cv2.CV_32F)[where]))


def test_background_colour_shows_where_alpha_is_0_and_the_photo_where_it_is_1(http) -> None:
    composite = astronaut()
    out = image(call(http, "/v1/background", composite, color="1e90ff"))
    colour = np.broadcast_to(np.array([0x1E, 0x90, 0xFF], np.uint8), out.shape)
    matte = image(call(http, "/v1/mask", composite))
    # Exactly, against the served matte: the new colour where it is 0, the photo's pixels where it is 255.
    assert np.array_equal(out[matte == 0], colour[matte == 0])
    assert np.abs(out[matte == 255].astype(int) - composite.image[matte == 255]).max() <= 1
    # And against the true alpha, which the served matte only approximates.
    assert close_fraction(out, colour, sure(composite.alpha, 0), 0) > 0.95
    assert close_fraction(out, composite.image, sure(composite.alpha, 1), 2) > 0.95


def test_background_image_and_blur_replace_the_backdrop(http) -> None:
    composite = astronaut()
    beach = np.zeros((300, 400, 3), np.uint8)
    beach[:150] = (120, 190, 250)
    beach[150:] = (230, 210, 160)
    buffer = io.BytesIO()
    Image.fromarray(beach).save(buffer, format="PNG")
    swapped = image(call(http, "/v1/background", composite, {"background": ("beach.png", buffer.getvalue(),
                                                                             "image/png")}))
    covered = cv2.resize(beach, (composite.image.shape[1], composite.image.shape[0]))  # cover: same aspect
    assert close_fraction(swapped, covered, sure(composite.alpha, 0, 10), 8) > 0.95
    blurred = image(call(http, "/v1/background", composite, blur=12))
    back = sure(composite.alpha, 0, 20)
    assert sharpness(blurred, back) < 0.3 * sharpness(composite.image, back)
    assert close_fraction(blurred, composite.image, sure(composite.alpha, 1), 2) > 0.97


def test_bokeh_keeps_the_subject_sharp_and_blurs_the_backdrop_and_the_focus_point_reverses_it(http) -> None:
    composite = astronaut()
    subject, backdrop = sure(composite.alpha, 1, 8), sure(composite.alpha, 0, 24)
    before = sharpness(composite.image, subject), sharpness(composite.image, backdrop)
    default = image(call(http, "/v1/bokeh", composite, aperture=8))
    assert sharpness(default, subject) > 0.85 * before[0]
    assert sharpness(default, backdrop) < 0.35 * before[1]
    depth = image(call(http, "/v1/depth", composite)).astype(np.float32)
    farthest = np.unravel_index(np.argmin(np.where(backdrop, depth, np.inf)), depth.shape)  # of the backdrop
    far = image(call(http, "/v1/bokeh", composite, aperture=8, focus_x=int(farthest[1]), focus_y=int(farthest[0])))
    assert sharpness(far, backdrop) > 2 * sharpness(default, backdrop)
    assert sharpness(far, subject) < 0.85 * before[0]


@pytest.mark.parametrize("aspect", ["1:1", "9:16", "16:9"])
def test_crop_has_the_exact_aspect_and_keeps_the_subject(http, aspect: str) -> None:
    composite = astronaut()
    response = call(http, "/v1/crop", composite, aspect=aspect, format="jpeg")
    out = image(response)
    x, y, w, h = (int(v) for v in response.headers["X-Crop-Box"].split(","))
    aw, ah = (int(v) for v in aspect.split(":"))
    assert out.shape[:2] == (h, w) and abs(w / h - aw / ah) <= 1 / min(w, h)
    mass = composite.alpha.sum()
    assert composite.alpha[y:y + h, x:x + w].sum() >= 0.9 * mass or (w == composite.alpha.shape[1] or
                                                                      h == composite.alpha.shape[0])
    assert close_fraction(out, composite.image[y:y + h, x:x + w], np.ones(out.shape[:2], bool), 24) > 0.97
    sized = image(call(http, "/v1/crop", composite, width=300, height=200))
    assert sized.shape == (200, 300, 3)


def test_fused_depth_puts_the_subject_in_front_and_its_edges_on_the_matte(http) -> None:
    """With the person matte: the composites are people, and the camera man's face (bent over his camera) is
    often not found, so model=auto would give him the salient-object matte, which takes the cat for the subject."""
    for composite in small_set():
        depth = image(call(http, "/v1/depth", composite, model="portrait")).astype(np.float32) / 65535
        subject, ring = regions(composite.alpha)
        assert np.median(depth[subject]) > np.median(depth[ring]), composite.name
        _, band_energy = edge_alignment(1 - depth, composite.alpha)
        assert band_energy > 0.4, composite.name  # the plain upsampled map scores about 0.18


def test_layers_equal_the_separate_calls(http) -> None:
    composite = astronaut()
    response = call(http, "/v1/layers", composite)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["width"], body["height"]) == composite.image.shape[1::-1]
    layers = {name: base64.b64decode(data) for name, data in body["layers"].items()}
    assert layers["depth"] == call(http, "/v1/depth", composite).content
    assert layers["matte"] == call(http, "/v1/mask", composite).content
    assert layers["foreground"] == call(http, "/v1/cutout", composite).content
    matte = image(call(http, "/v1/mask", composite))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(layers["background"])))[..., 3], 255 - matte)


def test_formats_decode_to_the_same_pixels_or_within_tolerance(http) -> None:
    composite = astronaut()
    png = image(call(http, "/v1/cutout", composite))
    lossless = image(call(http, "/v1/cutout", composite, format="webp", quality=100))
    assert np.array_equal(lossless, png)
    lossy = call(http, "/v1/cutout", composite, format="webp", quality=80)
    assert lossy.headers["content-type"] == "image/webp" and len(lossy.content) < len(call(
        http, "/v1/cutout", composite).content) / 2
    mask_png = image(call(http, "/v1/mask", composite))
    mask_jpeg = image(call(http, "/v1/mask", composite, format="jpeg", quality=90), "L")
    assert np.abs(mask_jpeg.astype(int) - mask_png).mean() < 3
    by_accept = http.post("/v1/bokeh", content=composite.jpeg, headers={"Content-Type": "image/jpeg",
                                                                          "Accept": "image/jpeg"})
    assert by_accept.headers["content-type"] == "image/jpeg" and by_accept.content[:2] == b"\xff\xd8"
    refused = call(http, "/v1/cutout", composite, format="jpeg")
    assert refused.status_code == 400 and "format=webp" in refused.json()["error"]["message"]
    assert "X-Credits-Charged" not in refused.headers


def test_a_focus_point_outside_the_photo_is_a_400_and_not_billed(http) -> None:
    composite = astronaut()
    response = call(http, "/v1/bokeh", composite, focus_x=5000, focus_y=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parameter"
    assert "outside the upright photo" in response.json()["error"]["message"]
    assert "X-Credits-Charged" not in response.headers
