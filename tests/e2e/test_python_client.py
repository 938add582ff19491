"""The Python client (``imageserve_client``) end to end: every operation once through the real gateway and Triton.

Each result must decode at the right size and type, the parsed headers must hold (depth range, crop box,
matte flag, credits), ``layers`` must equal the mask call byte for byte, and a bad parameter must raise
``BadRequest`` with the service's code. The photo goes in as each kind the client takes: bytes, a path, a file
object and a PIL image. ``model=auto`` must say ``person`` for the astronaut and ``object`` for the cup, and a tap
on the astronaut's body must select the person.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from imageserve_client import AsyncClient, BadRequest, Client, ImageResult, LayersResult
from PIL import Image

from tests.conftest import jpeg_bytes
from tests.e2e.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e

SIZE = (512, 512)  # skimage.data.astronaut(), width x height


@pytest.fixture(scope="module")
def client(gateway_url: str) -> Iterator[Client]:
    with Client(gateway_url, BOOTSTRAP_KEY, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> bytes:
    return jpeg_bytes(astronaut)


@pytest.fixture(scope="module")
def results(client: Client, photo: bytes, astronaut: np.ndarray,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImageResult | LayersResult]:
    """Every operation once, in this order (each call's balance follows the one before)."""
    path = tmp_path_factory.mktemp("client") / "astronaut.jpg"
    path.write_bytes(photo)
    backdrop = Image.fromarray(skimage.data.coffee())  # 600 x 400: "contain" fills the rest with its blurred edges
    found: dict[str, ImageResult | LayersResult] = {"depth": client.depth(photo)}
    found["mask"] = client.mask(path, format="png")
    with path.open("rb") as file:
        found["cutout"] = client.cutout(file, format="webp", quality=90)
    found["background"] = client.background(Image.fromarray(astronaut), background=backdrop, fit="contain",
                                            format="jpeg")
    found["bokeh"] = client.bokeh(photo, aperture=6, max_side=256, format="jpeg")
    found["adjust"] = client.adjust(photo, by="depth", fg_brightness=0.2, bg_saturation=-0.6, format="webp")
    found["crop"] = client.crop(photo, aspect="4:5")
    found["layers"] = client.layers(photo, include="matte,foreground")
    found["style"] = client.style(photo, style_image=backdrop, max_side=256, format="jpeg")  # a picture's style
    return found


def test_every_image_operation_decodes_at_the_right_size_and_type(results) -> None:
    expected = {"depth": ("I;16", "image/png"), "mask": ("L", "image/png"), "cutout": ("RGBA", "image/webp"),
                "background": ("RGB", "image/jpeg"), "bokeh": ("RGB", "image/jpeg"), "adjust": ("RGB", "image/webp"),
                "crop": ("RGB", "image/png"), "style": ("RGB", "image/jpeg")}
    for name, (mode, media_type) in expected.items():
        result = results[name]
        assert isinstance(result, ImageResult) and result.operation == name
        decoded = result.image()
        assert (decoded.mode, result.media_type) == (mode, media_type), name
        assert decoded.format == result.format.upper(), name
        if name in ("bokeh", "style"):
            assert decoded.size == (256, 256)  # max_side
        elif name != "crop":
            assert decoded.size == SIZE, name
    cutout = np.asarray(results["cutout"].image())
    assert cutout[..., 3].min() == 0 and cutout[..., 3].max() == 255  # a subject and a backdrop


def test_the_operations_headers_are_parsed(results) -> None:
    for name in ("depth", "bokeh"):
        near, far = results[name].depth_near, results[name].depth_far
        assert near is not None and far is not None and 0 < near < far and math.isfinite(far), name
    for name in ("mask", "cutout", "background"):
        assert results[name].matte_refined is True, name  # 0.26 MP is well under the refinement's bound
        x, y, w, h = results[name].foreground_box
        assert 0 <= x and 0 <= y and 0 < w and 0 < h and x + w <= SIZE[0] and y + h <= SIZE[1], name
    # The same JPEG (as a path and as a file) has the same matte; background's photo was a PIL image (re-encoded).
    assert results["cutout"].foreground_box == results["mask"].foreground_box
    left, top, width, height = results["mask"].foreground_box
    alpha = np.asarray(results["mask"].image())
    rows, cols = np.nonzero(alpha >= 13)
    # The box holds every pixel of the served matte from 5 % (13 of 255) up.
    assert 0 <= left <= cols.min() and 0 <= top <= rows.min() and width > 0 and height > 0
    assert cols.max() < left + width <= SIZE[0] and rows.max() < top + height <= SIZE[1]
    crop = results["crop"]
    x, y, w, h = crop.crop_box
    assert crop.image().size == (w, h) and abs(w / h - 4 / 5) <= 1 / min(w, h)
    assert 0 <= x and 0 <= y and x + w <= SIZE[0] and y + h <= SIZE[1]


def test_credits_headers_are_parsed_and_follow_each_other(results, client: Client) -> None:
    ordered = list(results.values())
    for result in ordered:
        assert result.request_id and result.charge_id and not result.replayed
        assert result.credits_charged is not None and result.credits_charged >= 2  # base 1 or more, + 1 for 0.26 MP
        assert result.rate_limit is not None and result.rate_limit.limit is not None
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert after.credits_remaining == before.credits_remaining - after.credits_charged
    assert client.usage(days=1).balance == ordered[-1].credits_remaining  # nothing billed since


def test_layers_equal_the_mask_calls_bytes(results) -> None:
    layers = results["layers"]
    assert isinstance(layers, LayersResult) and layers.names == ("matte", "foreground")
    assert layers.layers["matte"] == results["mask"].content
    assert (layers.width, layers.height) == SIZE and layers.image("foreground").mode == "RGBA"
    assert layers.depth_near is None  # not asked for


def test_auto_tells_a_person_from_an_object_and_a_tap_selects_the_person(client: Client, photo: bytes,
                                                                          photos: dict[str, np.ndarray]) -> None:
    coffee = client.mask(jpeg_bytes(photos["coffee"]))
    assert coffee.subject == "object" and coffee.faces == 0
    astronaut = client.mask(photo)
    assert astronaut.subject == "person" and astronaut.faces == 1
    tap = client.select(photo, x=100, y=330)  # the suit, below the face
    assert (tap.selected, tap.subject, tap.faces) == ("person", "person", 1)
    chosen, person = np.asarray(tap.image()) >= 128, np.asarray(astronaut.image()) >= 128
    assert tap.image().mode == "L" and chosen.shape == SIZE[::-1] and chosen[330, 100]
    assert (chosen & person).sum() / (chosen | person).sum() >= 0.9  # the person: the matte, as /v1/mask
    layers = client.layers(photo, include="face,faces")
    assert layers.subject == "person" and layers.face_count == 1 and len(layers.faces) == 1
    x, y, w, h = layers.faces[0]["box"]
    assert 0 <= x and 0 <= y and x + w <= SIZE[0] and y + h <= SIZE[1] and len(layers.faces[0]["landmarks"]) == 468
    face = np.asarray(layers.image("face"))
    rows, cols = np.nonzero(face >= 128)
    assert layers.image("face").mode == "L" and x - 2 <= cols.mean() <= x + w + 2 and y - 2 <= rows.mean() <= y + h + 2


def test_a_bad_parameter_raises_bad_request_with_the_services_code_and_is_not_billed(client: Client,
                                                                                      photo: bytes) -> None:
    balance = client.usage().balance
    with pytest.raises(BadRequest) as raised:
        client.bokeh(photo, aperture=11)
    error = raised.value
    assert error.status == 400 and error.code == "invalid_parameter" and "aperture" in error.message
    assert error.request_id
    with pytest.raises(BadRequest, match="exactly one of"):
        client.background(photo)  # neither color, blur nor background
    assert client.usage().balance == balance


def test_the_async_client_and_an_idempotent_retry(gateway_url: str, photo: bytes, tmp_path: Path) -> None:
    async def run() -> tuple[ImageResult, ImageResult]:
        async with AsyncClient(gateway_url, BOOTSTRAP_KEY, timeout=120) as client:
            first = await client.mask(photo, model="fast", max_side=128, idempotency_key=f"e2e-{tmp_path.name}")
            again = await client.mask(photo, model="fast", max_side=128, idempotency_key=f"e2e-{tmp_path.name}")
            return first, again

    first, again = asyncio.run(run())
    assert first.image().size == (128, 128) and first.image().mode == "L"
    assert again.replayed and again.charge_id == first.charge_id and again.content == first.content
    assert again.credits_remaining == first.credits_remaining
    assert Image.open(io.BytesIO(again.content)).size == (128, 128)
