import io

import numpy as np
import pytest
from PIL import Image

from imaging.decode import Photo
from imaging.depth import follow_photo, nearness
from imaging.encode import encode
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.matte import upsample
from imaging.outputs import UINT16_MAX, cutout_rgba, matte_to_uint8
from imaging.tensors import IMAGENET_MEAN, IMAGENET_STD, model_input
from tests.conftest import jpeg_bytes


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_exif_orientation_is_applied(astronaut: np.ndarray) -> None:
    landscape = astronaut[:, :384]  # 512 high, 384 wide
    photo = Photo(jpeg_bytes(landscape, exif=exif_with(6)), max_pixels=10**7)  # 6 = rotate 90 clockwise
    assert photo.full_size == (512, 384)
    upright = np.asarray(photo.decode())
    expected = np.rot90(landscape, k=-1)
    assert upright.shape == expected.shape
    assert np.abs(upright.astype(int) - expected).mean() < 4


def test_reduced_decode_covers_the_request(astronaut: np.ndarray) -> None:
    big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048)))
    photo = Photo(jpeg_bytes(big), max_pixels=10**7)
    image = photo.decode(min_size=(300, 300))
    assert image.size == (512, 512)  # 1/4 DCT scale: the smallest that is >= 300
    assert photo.full_size == (2048, 2048)


def test_full_decode_without_min_size(astronaut: np.ndarray) -> None:
    assert Photo(jpeg_bytes(astronaut), max_pixels=10**7).decode().size == (512, 512)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16"])
def test_every_pixel_mode_becomes_rgb(mode: str, astronaut: np.ndarray) -> None:
    source = Image.fromarray(astronaut)
    image = source.convert("I;16") if mode == "I;16" else source.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if mode in ("L", "CMYK") else "PNG")
    decoded = Photo(buffer.getvalue(), max_pixels=10**7).decode()
    assert decoded.mode == "RGB" and decoded.size == (512, 512)


def test_pixel_limit() -> None:
    with pytest.raises(ImageError, match="over the limit"):
        Photo(jpeg_bytes(np.zeros((100, 100, 3), np.uint8)), max_pixels=9999)


def test_truncated_jpeg_fails_on_decode(astronaut: np.ndarray) -> None:
    data = jpeg_bytes(astronaut)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        Photo(data[: len(data) // 2], max_pixels=10**7).decode()


def test_garbage_is_refused() -> None:
    with pytest.raises(ImageError, match="not a readable"):
        Photo(b"not an image at all", max_pixels=10**7)


@pytest.mark.parametrize(("size", "max_side", "expected"), [
    ((4000, 3000), 0, (4000, 3000)), ((4000, 3000), 1000, (1000, 750)),
    ((300, 200), 1000, (300, 200)), ((3000, 4000), 1024, (768, 1024)),
])
def test_output_size(size, max_side, expected) -> None:
    assert output_size(size, max_side) == expected


def test_model_input_normalisations(astronaut: np.ndarray) -> None:
    image = Image.fromarray(astronaut)
    unit = model_input(image, 224, 160, "unit")
    assert unit.shape == (3, 224, 160) and unit.dtype == np.float32
    assert 0.0 <= unit.min() and unit.max() <= 1.0
    imagenet = model_input(image, 224, 160, "imagenet")
    np.testing.assert_allclose(imagenet, (unit - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-5)
    symmetric = model_input(image, 224, 160, "symmetric")  # MODNet: (RGB - 127.5) / 127.5
    np.testing.assert_allclose(symmetric, unit * 2 - 1, atol=1e-5)
    assert -1.0 <= symmetric.min() and symmetric.max() <= 1.0 and symmetric.dtype == np.float32
    with pytest.raises(ValueError, match="not one of"):
        model_input(image, 8, 8, "bogus")


def test_depth_is_near_bright_and_documented_scale() -> None:
    depth = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)
    result = follow_photo(depth, (2, 2), None, None)
    near, far = result.near, result.far
    plane = np.rint(nearness(result.depth, near, far) * UINT16_MAX).astype(np.uint16)
    assert (near, far) == (1.0, 5.0)
    assert plane[0, 0] == 65535 and plane[1, 1] == 0
    # The documented inverse: d = far - p / 65535 * (far - near)
    recovered = far - plane.astype(np.float64) / 65535 * (far - near)
    np.testing.assert_allclose(recovered, depth, atol=1e-4)


def test_png_outputs_have_the_requested_size_and_no_metadata() -> None:
    depth = np.linspace(1, 4, 224 * 224, dtype=np.float32).reshape(224, 224)
    result = follow_photo(depth, (640, 480), None, None)
    plane = np.rint(nearness(result.depth, result.near, result.far) * UINT16_MAX).astype(np.uint16)
    image = Image.open(io.BytesIO(encode(plane, "png", 90, 1)))
    assert image.size == (640, 480) and image.mode == "I;16"
    assert not image.getexif() and "xmp" not in image.info and "exif" not in image.info
    alpha = np.zeros((256, 256), np.float32)
    alpha[64:192, 64:192] = 1.0
    matte = Image.open(io.BytesIO(encode(matte_to_uint8(upsample(alpha, (512, 512))), "png", 90, 1)))
    assert matte.mode == "L" and matte.size == (512, 512)
    assert np.asarray(matte)[256, 256] == 255 and np.asarray(matte)[10, 10] == 0


def test_cutout_zeroes_colour_under_transparent_pixels() -> None:
    rgb = np.full((40, 60, 3), 200, np.uint8)
    alpha = np.zeros((8, 8), np.float32)
    alpha[:, 4:] = 1.0
    cutout = cutout_rgba(rgb, matte_to_uint8(upsample(alpha, (60, 40))))
    cut = np.asarray(Image.open(io.BytesIO(encode(cutout, "png", 90, 1))))
    assert cut.shape == (40, 60, 4)
    assert (cut[:, 0, :] == 0).all()
    assert (cut[:, -1, 3] == 255).all() and (cut[:, -1, :3] == 200).all()


def test_alpha_is_clipped_to_bytes() -> None:
    matte = matte_to_uint8(np.array([[-0.5, 1.5]], np.float32))
    assert matte.tolist() == [[0, 255]]


def test_corrupt_png_pixels_are_an_image_error(astronaut: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="PNG")
    png = buffer.getvalue()
    start = png.index(b"IDAT") + 100
    with pytest.raises(ImageError, match="corrupt"):
        Photo(png[:start] + bytes(500) + png[start + 500 :], max_pixels=10**7).decode()
