"""What the load generators send and how each answer is checked: photos, the locust mix, the response check.

No locust import here: importing locust monkey-patches the standard library with gevent, which tests and the
bench must not suffer.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Mapping
from functools import cache
from typing import TypeVar

import numpy as np
import skimage.data
from PIL import Image

from contract.product import DEPTH_RANGE, PRODUCT
from contract.schema import SUBJECTS, HeaderOutput
from load_tests.operations import OPERATIONS, Operation
from load_tests.png_check import BadResponse, check_png

K = TypeVar("K")
# Photo sizes: name -> (width, height).
SIZES = {"0.3MP": (640, 480), "1MP": (1152, 864), "3MP": (2048, 1536), "12MP": (4000, 3000)}
# Sensor-like grain (standard deviation in 8-bit levels). An upscaled 512-px portrait is unnaturally smooth:
# without grain its 12 MP JPEG is ~1 MB and decodes faster than a camera's (3-5 MB); with it, ~1.6 MB.
GRAIN_SIGMA = 3.0
ENSEMBLES = {ensemble.label: ensemble for ensemble in PRODUCT.ensembles() if ensemble.label in OPERATIONS}
# Share of traffic per operation at its default variant, every other variant 1: masks and depth dominate,
# cutouts cost more.
DEFAULT_VARIANT_WEIGHTS = {"depth": 3, "mask": 4, "cutout": 2}
OPERATION_WEIGHTS = {label: DEFAULT_VARIANT_WEIGHTS.get(e.operation.name, 1)
                     if e.variant in ("", e.operation.default_variant) else 1 for label, e in ENSEMBLES.items()}
# Phone apps mostly send 1 MP previews; originals (12 MP) are the rare, heavy tail.
PHOTO_WEIGHTS = {"0.3MP": 3, "1MP": 4, "3MP": 2, "12MP": 1}
# max_side -> weight: most callers want the photo's size, some a 1024-px preview.
MAX_SIDE_WEIGHTS = {0: 3, 1024: 1}
WHOLE = "{:.0f}"  # the format of a header output with whole-number values (X-Faces, X-Matte-Refined)
WHOLE_NUMBER, NUMBER = r"-?[0-9]+", r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"  # as the ensemble's formats write them


def check_sizes(names: list[str]) -> list[str]:
    """The photo size names, or a ValueError that lists the known ones."""
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise ValueError(f"unknown photo size(s) {unknown or names}; choose from {', '.join(SIZES)}")
    return names


@cache
def photo_jpeg(size: str) -> bytes:
    """The astronaut portrait (scikit-image) resized to ``size``, with grain, as a JPEG; cached and reproducible."""
    width, height = SIZES[check_sizes([size])[0]]
    portrait = Image.fromarray(skimage.data.astronaut())
    pixels = np.asarray(portrait.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = np.random.default_rng(seed=width).normal(0.0, GRAIN_SIGMA, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(pixels + grain), 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def operation_deck(rng: random.Random) -> list[str]:
    """A shuffled cycle of operations: every endpoint in each run of ``sum(weights)`` requests."""
    deck = [name for name, weight in OPERATION_WEIGHTS.items() for _ in range(weight)]
    rng.shuffle(deck)
    return deck


def weighted_choice(weights: Mapping[K, int], rng: random.Random) -> K:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def request_path(operation: Operation, max_side: int) -> str:
    if not max_side:
        return operation.http_path
    return operation.http_path + ("&" if "?" in operation.http_path else "?") + f"max_side={max_side}"


def check_answer(operation: Operation, status: int, headers: Mapping[str, str], body: bytes, size: tuple[int, int],
                 billed: bool = True) -> None:
    """Raise BadResponse unless this is the operation's PNG at ``size`` with its header outputs (and, when
    ``billed``, the credits charged); ``headers`` answers lower-case names."""
    if status != 200:
        raise BadResponse(f"HTTP {status}: {body[:200]!r}")
    if headers.get("content-type") != "image/png":
        raise BadResponse(f"Content-Type {headers.get('content-type')!r}, expected image/png")
    check_png(body, size, operation.png_kind)
    charged = headers.get("x-credits-charged", "")
    if billed and (not charged.isdigit() or int(charged) < 1):
        raise BadResponse(f"X-Credits-Charged {charged!r}: every successful call costs at least 1 credit")
    ensemble = ENSEMBLES[operation.name]
    for output in ensemble.operation.header_outputs:  # e.g. a depth range: numbers, in order; X-Subject: a word
        if output.unknown_below_zero and not ensemble.with_faces:  # X-Faces: no faces step, no count
            continue
        values = header_values(output, headers)
        if output.tensor == DEPTH_RANGE.tensor and values != sorted(values):
            raise BadResponse(f"{output.headers[0][0]} {values[0]} > {output.headers[-1][0]} {values[-1]}")
        variant = ensemble.operation.variant(ensemble.variant)
        if output.labels == SUBJECTS and variant is not None and variant.subject and values != [variant.subject]:
            raise BadResponse(f"X-Subject {values[0]!r}, but model={variant.name} always mattes a {variant.subject}")


def header_values(output: HeaderOutput, headers: Mapping[str, str]) -> list[float | str]:
    """The values of ``output``'s headers as declared: words of its labels (X-Subject: person), whole numbers (format
    ``{:.0f}``: X-Faces) or numbers, a joined header's (X-Crop-Box) split; BadResponse when one is missing or of
    another kind. ``headers`` answers lower-case names."""
    values: list[float | str] = []
    for name, _ in output.headers:
        if name.lower() not in headers:
            raise BadResponse(f"no {name} header")
        text = headers[name.lower()]
        for value in text.split(output.join) if output.join else [text]:
            if output.labels:
                if value not in output.labels:
                    raise BadResponse(f"{name} {value!r} is not one of {', '.join(output.labels)}")
                values.append(value)
                continue
            whole = output.format == WHOLE
            if not re.fullmatch(WHOLE_NUMBER if whole else NUMBER, value):
                raise BadResponse(f"{name} {text!r} is not {'a whole number' if whole else 'a number'}")
            values.append(float(value))
    return values
