"""The evaluation set: two real people with known alpha composited over real photos, then JPEG re-encoded.

``I = alpha * F + (1 - alpha) * B`` with F the person photo (``skimage.data.astronaut()`` or
``camera()``), alpha its reference matte (``evaluation/data/*_alpha_ref.png``, made by a large
matting model and checked by eye) and B one of scikit-image's sample photos, resized and cropped to a
768x576 canvas. The person is scaled to 0.6-1.0 of the canvas height, stands on the bottom edge (both
photos are cut by the frame there) and is shifted horizontally; a person cut by a side of the frame
(the cameraman, on the left) stays against that side of the canvas, mirrored half of the time. The
placements come from a fixed seed. Nothing may be tuned on these composites: they are the measurement.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"
CANVAS = (576, 768)  # height, width: 0.44 megapixels
PEOPLE = ("astronaut", "camera")
BACKGROUNDS = ("coffee", "chelsea", "rocket", "coins", "brick", "grass", "hubble_deep_field", "retina")
PLACEMENTS = 3  # per person and background
QUALITIES = (75, 90)
SCALES = (0.6, 1.0)
SEED = 20240611
SMALL = (0, 17, 28, 45)  # indices into the full set: both people, four backgrounds, both qualities
EDGE_CUT = 0.05  # a side where more than this fraction of the matte is opaque is the frame cutting the person


@dataclass(frozen=True)
class Composite:
    name: str  # e.g. "astronaut-over-coffee-s0.80-x0.10-q90"
    jpeg: bytes  # the composite as sent to the service (JPEG re-encoded)
    image: np.ndarray  # uint8 (H, W, 3): that JPEG decoded back
    alpha: np.ndarray  # float32 (H, W) in [0, 1]: the true alpha
    foreground: np.ndarray  # uint8 (H, W, 3): the true foreground colour (the person photo, placed)


@dataclass(frozen=True)
class Spec:
    person: str
    background: str
    scale: float  # person height / canvas height
    x: float  # left edge of the person, as a fraction of the free width (0 = left side, 1 = right side)
    mirrored: bool
    quality: int

    @property
    def name(self) -> str:
        person = f"{self.person}-mirrored" if self.mirrored else self.person
        return f"{person}-over-{self.background}-s{self.scale:.2f}-x{self.x:.2f}-q{self.quality}"


def rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from a grey, RGB or RGBA sample image."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


@cache
def person(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The person photo (uint8 RGB) and its reference alpha (float32 in [0, 1]), both 512x512."""
    photo = rgb(getattr(skimage.data, name)())
    alpha = np.asarray(Image.open(DATA / f"{name}_alpha_ref.png").convert("L"), dtype=np.float32) / 255.0
    return photo, alpha


def cut_sides(alpha: np.ndarray) -> tuple[bool, bool]:
    """Whether the frame cuts the person on the left and on the right."""
    return bool((alpha[:, 0] > 0.5).mean() > EDGE_CUT), bool((alpha[:, -1] > 0.5).mean() > EDGE_CUT)


def specs() -> list[Spec]:
    """The full set's placements, in a fixed order, from a fixed seed."""
    rng = np.random.default_rng(SEED)
    out = []
    for who in PEOPLE:
        for background in BACKGROUNDS:
            for _ in range(PLACEMENTS):
                scale = round(float(rng.uniform(*SCALES)), 2)
                x = round(float(rng.uniform(0.0, 1.0)), 2)
                mirrored = bool(rng.random() < 0.5)
                left, right = cut_sides(person(who)[1][:, ::-1] if mirrored else person(who)[1])
                if left or right:
                    x = 0.0 if left else 1.0
                out.append(Spec(who, background, scale, x, mirrored, QUALITIES[len(out) % len(QUALITIES)]))
    return out


# Sample photos that scikit-image returns inside something else: name -> the photo.
SAMPLES = {"motorcycle": lambda: skimage.data.stereo_motorcycle()[0]}


def background(name: str, size: tuple[int, int] = CANVAS) -> np.ndarray:
    """A sample photo (a ``skimage.data`` function's name, or one of ``SAMPLES``) resized to cover ``size``
    (height, width) and cropped to it around its centre."""
    image = Image.fromarray(rgb(SAMPLES[name]() if name in SAMPLES else getattr(skimage.data, name)()))
    height, width = size
    factor = max(width / image.width, height / image.height)
    covered = image.resize((max(width, round(image.width * factor)), max(height, round(image.height * factor))),
                           Image.Resampling.LANCZOS)
    left, top = (covered.width - width) // 2, (covered.height - height) // 2
    return np.asarray(covered.crop((left, top, left + width, top + height)))


def place(spec: Spec, size: tuple[int, int] = CANVAS) -> tuple[np.ndarray, np.ndarray]:
    """The person of ``spec`` on the canvas: foreground (uint8 RGB, 0 outside the photo) and alpha (float32)."""
    photo, alpha = person(spec.person)
    if spec.mirrored:
        photo, alpha = photo[:, ::-1], alpha[:, ::-1]
    height, width = size
    side = round(spec.scale * height)
    scaled_photo = np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize((side, side),
                                                                                  Image.Resampling.LANCZOS))
    scaled_alpha = np.asarray(Image.fromarray(np.ascontiguousarray(alpha), mode="F").resize(
        (side, side), Image.Resampling.LANCZOS))
    left, top = round(spec.x * (width - side)), height - side
    foreground = np.zeros((height, width, 3), np.uint8)
    matte = np.zeros((height, width), np.float32)
    foreground[top:, left:left + side] = scaled_photo
    matte[top:, left:left + side] = np.clip(scaled_alpha, 0.0, 1.0)
    return foreground, matte


def compose(foreground: np.ndarray, alpha: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``alpha * F + (1 - alpha) * B``, rounded to uint8."""
    a = alpha[..., None].astype(np.float64)
    return np.clip(np.rint(a * foreground + (1.0 - a) * back), 0, 255).astype(np.uint8)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@cache
def render(spec: Spec) -> Composite:
    foreground, alpha = place(spec)
    buffer = io.BytesIO()
    Image.fromarray(compose(foreground, alpha, background(spec.background))).save(
        buffer, format="JPEG", quality=spec.quality)
    jpeg = buffer.getvalue()
    image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    return Composite(spec.name, jpeg, _frozen(image), _frozen(alpha), _frozen(foreground))


def composites(size: str = "full") -> list[Composite]:
    """The evaluation set: "full" (48 composites, for the results document) or "small" (4, for tests)."""
    every = specs()
    if size == "full":
        chosen = every
    elif size == "small":
        chosen = [every[i] for i in SMALL]
    else:
        raise ValueError(f"size must be 'full' or 'small', not {size!r}")
    return [render(spec) for spec in chosen]
