"""Coverage-guided fuzzing (atheris, libFuzzer) of the gateway's header-only image check.

``inspect_image`` runs on the gateway's event loop on untrusted bytes: for
any input it must return or raise one of the gateway's ``ApiError``s (a 4xx),
quickly. Anything else (IndexError, struct.error, a hang) is a crash, which
libFuzzer saves as ``crash-<sha1>`` (or ``timeout-...``) under ``-artifact_prefix``.

    .venv/bin/python tests/fuzz/fuzz_image_check.py CORPUS_DIR -max_total_time=300 -timeout=5
    .venv/bin/python tests/fuzz/fuzz_image_check.py crash-...   # reproduce one input

``--seed DIR`` writes the generated seed files into DIR first.
``IMAGESERVE_FUZZ_SELFTEST=1`` plants a crash on inputs starting with b"CRASH",
so a test can prove that crashes are caught and reported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

with atheris.instrument_imports(include=["gateway.image_check"]):
    from gateway.image_check import inspect_image

from gateway.errors import ApiError

MAX_PIXELS = 40_000_000
DECLARED_TYPES = (None, "image/jpeg", "image/png", "image/webp")
SELFTEST = os.environ.get("IMAGESERVE_FUZZ_SELFTEST") == "1"


def test_one_input(data: bytes) -> None:
    if SELFTEST and data.startswith(b"CRASH"):
        raise RuntimeError("planted crash (IMAGESERVE_FUZZ_SELFTEST)")
    # The last byte picks the declared Content-Type, so that branch is fuzzed too.
    declared = DECLARED_TYPES[data[-1] % len(DECLARED_TYPES)] if data else None
    try:
        inspect_image(data, MAX_PIXELS, declared)
    except ApiError:
        pass


if __name__ == "__main__":
    from tests.fuzz.seeds import fuzz

    fuzz(sys.argv, test_one_input)
