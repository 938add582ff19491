"""Response checks, the traffic mix and the closed-loop load generator, without servers."""

import asyncio
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from contract.product import PRODUCT
from imaging.encode import encode
from imaging.matte import upsample
from imaging.outputs import cutout_rgba, matte_to_uint8
from load_tests.closed_loop import run_closed_loop
from load_tests.operations import OPERATIONS
from load_tests.png_check import BadResponse, check_png
from load_tests.services import ProcessMonitor
from load_tests.traffic_mix import OPERATION_WEIGHTS, check_answer, operation_deck, request_path

ALPHA = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
MASK_40x30 = encode(matte_to_uint8(upsample(ALPHA, (40, 30))), "png", 90, 1)
DEPTH_40x30 = encode(np.rint(upsample(ALPHA, (40, 30)) * 65535).astype(np.uint16), "png", 90, 1)
DEPTH, MASK, CUTOUT = (OPERATIONS[next(e.label for e in PRODUCT.ensembles() if e.operation.name == name)]
                       for name in ("depth", "mask", "cutout"))


def test_real_outputs_pass_their_png_checks() -> None:
    check_png(MASK_40x30, (40, 30), MASK.png_kind)
    check_png(DEPTH_40x30, (40, 30), DEPTH.png_kind)
    rgba = cutout_rgba(np.zeros((30, 40, 3), np.uint8), matte_to_uint8(upsample(ALPHA, (40, 30))))
    cutout = encode(rgba, "png", 90, 1)
    check_png(cutout, (40, 30), CUTOUT.png_kind)


@pytest.mark.parametrize("body, size, kind, message", [
    (MASK_40x30, (41, 30), MASK.png_kind, "expected 41x30"),
    (MASK_40x30, (40, 30), CUTOUT.png_kind, "expected 8-bit RGBA"),
    (MASK_40x30[:-5], (40, 30), MASK.png_kind, "truncated"),
    (b'{"error": "nope"}', (40, 30), MASK.png_kind, "not a PNG"),
])
def test_wrong_pngs_are_refused(body: bytes, size, kind, message: str) -> None:
    with pytest.raises(BadResponse, match=message):
        check_png(body, size, kind)


def test_answers_need_their_credits_and_a_depth_range() -> None:
    png = DEPTH_40x30
    headers = {"content-type": "image/png", "x-credits-charged": "2", "x-subject": "person"}
    check_answer(DEPTH, 200, {**headers, "x-depth-near": "0.5", "x-depth-far": "3.0"}, png, (40, 30))
    for status, changed, message in ((200, {}, "no X-Depth-Near header"),
                                     (200, {"x-depth-near": "4", "x-depth-far": "3"},
                                      "X-Depth-Near 4.0 > X-Depth-Far 3.0"),
                                     (200, {"x-depth-near": "near", "x-depth-far": "3"}, "'near' is not a number"),
                                     (200, {"x-credits-charged": "0"}, "X-Credits-Charged"),
                                     (200, {"content-type": "text/plain"}, "expected image/png"),
                                     (503, {}, "HTTP 503")):
        with pytest.raises(BadResponse, match=message):
            check_answer(DEPTH, status, {**headers, **changed}, png, (40, 30))


def test_labelled_and_whole_number_headers_are_checked_as_declared() -> None:
    """X-Subject is one of its words (a fixed variant's own), X-Faces and X-Matte-Refined whole numbers."""
    mask = PRODUCT.operation("mask")
    whole = {name.lower(): "1" for output in mask.header_outputs if not output.labels for name, _ in output.headers}
    answer = {"content-type": "image/png", **whole}
    for subject in ("person", "object"):  # auto decides per photo
        check_answer(OPERATIONS["mask_auto"], 200, {**answer, "x-subject": subject}, MASK_40x30, (40, 30), billed=False)
    check_answer(OPERATIONS["mask_fast"], 200, {**answer, "x-subject": "person"}, MASK_40x30, (40, 30), billed=False)
    for name, changed, message in (("mask_auto", {"x-subject": "1"}, "X-Subject '1' is not one of object, person"),
                                   ("mask_auto", {"x-subject": "person", "x-faces": "1.5"},
                                    "X-Faces '1.5' is not a whole number"),
                                   ("mask_auto", {}, "no X-Subject header"),
                                   ("mask_fast", {"x-subject": "object"}, "model=fast always mattes a person")):
        with pytest.raises(BadResponse, match=message):
            check_answer(OPERATIONS[name], 200, {**answer, **changed}, MASK_40x30, (40, 30), billed=False)


def test_the_mix_covers_every_ensemble_in_every_window_of_the_deck() -> None:
    assert set(OPERATION_WEIGHTS) == set(OPERATIONS) and min(OPERATION_WEIGHTS.values()) >= 1
    deck = operation_deck(random.Random(7))
    for start in range(len(deck)):
        assert set((deck * 2)[start:start + len(deck)]) == set(OPERATION_WEIGHTS)
    assert sorted(deck) == sorted(name for name, w in OPERATION_WEIGHTS.items() for _ in range(w))
    assert request_path(MASK, 1024) == f"{MASK.http_path}&max_side=1024"
    assert request_path(DEPTH, 1024) == f"{DEPTH.http_path}&max_side=1024" and request_path(DEPTH, 0) == DEPTH.http_path


class FakeTarget:
    """Answers after ``delay_s``; every ``fail_every``-th request fails."""

    def __init__(self, delay_s: float, fail_every: int = 0) -> None:
        self.delay_s, self.fail_every, self.sent, self.workers = delay_s, fail_every, 0, 0

    async def open(self, workers: int) -> None:
        self.workers = workers

    async def send(self, worker: int) -> None:
        self.sent += 1
        await asyncio.sleep(self.delay_s)
        if self.fail_every and self.sent % self.fail_every == 0:
            raise BadResponse("wrong body")

    async def close(self) -> None:
        self.workers = -1


def test_closed_loop_throughput_follows_concurrency_over_latency() -> None:
    target = FakeTarget(0.02)
    result = asyncio.run(run_closed_loop(target, concurrency=4, duration_s=0.5, warmup_s=0.1))
    assert target.workers == -1  # closed
    assert result.throughput == pytest.approx(4 / 0.02, rel=0.25)
    assert min(result.latencies_s) >= 0.02 and result.errors == 0
    assert result.completed > len(result.latencies_s)  # the warm-up's answers count for CPU per request


def test_closed_loop_counts_failures_apart_from_throughput() -> None:
    result = asyncio.run(run_closed_loop(FakeTarget(0.01, fail_every=2), concurrency=1, duration_s=0.4, warmup_s=0.0))
    assert result.errors > 0 and result.first_error == "BadResponse: wrong body"
    assert result.throughput == pytest.approx(len(result.latencies_s) / 0.4)
    assert abs(result.errors - len(result.latencies_s)) <= 2


def test_slow_requests_stretch_the_window_to_several_rounds() -> None:
    result = asyncio.run(run_closed_loop(FakeTarget(0.2), concurrency=2, duration_s=0.1, warmup_s=0.0, min_rounds=3))
    assert result.window_s == pytest.approx(0.6, abs=0.05)
    assert 4 <= len(result.latencies_s) <= 6  # about 3 rounds of 2 workers, not the 0 or 1 a 0.1 s window gives


def test_closed_loop_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="concurrency >= 1"):
        asyncio.run(run_closed_loop(FakeTarget(0.0), concurrency=0, duration_s=1, warmup_s=0))


def test_process_monitor_measures_cpu_and_peak_memory_of_a_process_tree() -> None:
    busy = "import time\nx = b\"x\" * (80 << 20)\nend = time.time() + 0.6\nwhile time.time() < end: pass\n"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}])"])
    try:
        with ProcessMonitor(interval_s=0.05) as monitor:
            time.sleep(0.15)  # the child has started
            monitor.watch("tree", parent.pid, with_children=True)
            with monitor.phase() as phase:
                time.sleep(0.5)
    finally:
        parent.wait()
    assert phase.cpu_s["tree"] / phase.wall_s > 0.5  # the child spins one core; the parent only waits
    assert phase.peak_rss_mib["tree"] > 80 and monitor.phases == [phase]
