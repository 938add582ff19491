"""Coverage-guided fuzzing (atheris) of the decode step that runs inside Triton's preprocess.

``Photo`` must turn any bytes into pixels or an ``ImageError`` (a 4xx): any
other exception would be a 5xx, and a slow input a stuck model instance.
Pillow's Python plugins are instrumented too, so the fuzzer steers through
their parsers. A manual harness (minutes per run), not part of the test suite:

    .venv/bin/python tests/fuzz/fuzz_decode.py --seed CORPUS_DIR -max_total_time=300 -timeout=10 -rss_limit_mb=4096
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

with atheris.instrument_imports(include=["imaging", "PIL"]):
    from PIL import Image

    Image.init()  # import every format plugin now, while imports are instrumented
    from imaging.decode import Photo
    from imaging.errors import ImageError

MAX_PIXELS = 4_000_000  # the service allows 40 MP; a tenth keeps every legitimate decode fast


def test_one_input(data: bytes) -> None:
    try:
        photo = Photo(data, MAX_PIXELS)
        photo.decode(min_size=(64, 64) if data[-1:] == b"\x01" else None)
    except ImageError:
        pass


if __name__ == "__main__":
    from tests.fuzz.seeds import fuzz

    fuzz(sys.argv, test_one_input)
