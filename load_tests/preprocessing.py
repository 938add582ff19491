"""(e) Preprocessing alone: an encoded JPEG to a model input tensor, with and without reduced-size decoding.

"Full" decodes every pixel, then resizes; "reduced" lets libjpeg scale by
1/2, 1/4 or 1/8 inside the inverse DCT (Pillow's draft mode, as the
preprocess step does) to the smallest size that still covers the model input.
Both then resize and normalise with the same ``imaging`` code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from imaging.decode import Photo
from imaging.tensors import model_input
from load_tests.photos import photo_jpeg
from load_tests.stats import median_of

# 512: a large model input; 320 and 256: what U2-Netp and MediaPipe's segmentation read.
INPUT_SIDES = (512, 320, 256)
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class DecodeTiming:
    photo: str
    input_side: int
    full_ms: float
    reduced_ms: float

    @property
    def reduced_share(self) -> float:
        """Reduced-size time as a fraction of the full decode + resize."""
        return self.reduced_ms / self.full_ms


def time_to_input(data: bytes, side: int, reduced: bool) -> float:
    """Seconds from encoded bytes to a side x side float tensor."""
    started = time.perf_counter()
    rgb = Photo(data, MAX_PIXELS).decode(min_size=(side, side) if reduced else None)
    model_input(rgb, side, side, "unit")
    return time.perf_counter() - started


def measure_decoding(sizes: list[str], repeats: int, sides: tuple[int, ...] = INPUT_SIDES) -> list[DecodeTiming]:
    """Median of ``repeats`` alternating runs per photo size and input side."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    timings = []
    for size in sizes:
        data = photo_jpeg(size)
        for side in sides:
            time_to_input(data, side, reduced=False)  # warm caches and Pillow's plugins
            full, reduced = [], []
            for _ in range(repeats):
                full.append(time_to_input(data, side, reduced=False))
                reduced.append(time_to_input(data, side, reduced=True))
            timings.append(DecodeTiming(size, side, median_of(full) * 1e3, median_of(reduced) * 1e3))
    return timings
