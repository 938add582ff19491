"""The peer of the bench: rembg's own server starts offline from the catalog's U2-Netp file, answers masks and
cutouts, agrees with our object-lite mask through the real stack (same weights), loads under the bench's closed
loop; and the section renders the ratios ours / rembg against the targets, on made-up numbers."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from converters.catalog import load_catalog
from converters.fetch import fetch_source
from load_tests import peer, peer_section, report
from load_tests.closed_loop import run_closed_loop
from load_tests.operations import OPERATIONS
from load_tests.peer_section import OURS, PEER
from load_tests.png_check import BadResponse
from tests.conftest import jpeg_bytes
from tests.e2e.conftest import BOOTSTRAP_KEY

RUN = {"at": "2026-01-01 10:00 UTC", "command": "python -m load_tests.bench --sections peer", "machine": "2 cores",
       "note": ""}
# Measured here (astronaut, 512 x 512): IoU 0.985 at alpha 0.5, mean |difference| 0.006 (of 1). The rest is
# preprocessing and upsampling: ours is refined at the output size against the photo (X-Matte-Refined: 1), rembg's
# is its LANCZOS-upsampled map. (camera 0.988 / 0.012, coffee 0.998 / 0.003, chelsea the cat 0.894 / 0.062.)
MIN_IOU, MAX_MEAN_DIFFERENCE = 0.97, 0.02


@pytest.fixture(scope="module")
def rembg() -> Iterator[peer.RunningPeer]:
    with peer.running_peer() as running:
        yield running


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_the_peer_starts_offline_from_the_catalogs_file_and_answers_mask_and_cutout(
        rembg: peer.RunningPeer, astronaut: np.ndarray) -> None:
    source = fetch_source(load_catalog()[peer.MODEL])
    assert hashlib.md5(source.read_bytes()).hexdigest() == "8e83ca70e441ab06c318d82300c84806"  # rembg's u2netp
    photo = jpeg_bytes(astronaut)
    mask, cutout = png(peer.remove(rembg.port, photo, mask_only=True)), png(peer.remove(rembg.port, photo, False))
    assert (mask.mode, mask.size, cutout.mode, cutout.size) == ("L", (512, 512), "RGBA", (512, 512))
    alpha = np.asarray(mask)
    assert np.array_equal(np.asarray(cutout)[..., 3], alpha)  # the cutout's alpha is the mask
    assert alpha[400:, 200:300].mean() > 200 and alpha[:60, 400:].mean() < 30  # the suit is in, the corner is out
    # Nothing was downloaded: the model folder still holds only the link to the catalog's file.
    assert [(p.name, p.resolve()) for p in rembg.model_home.iterdir()] == [("u2netp.onnx", source.resolve())]


def test_its_mask_agrees_with_our_object_lite_mask_through_the_real_stack(
        rembg: peer.RunningPeer, gateway_url: str, astronaut: np.ndarray) -> None:
    photo = jpeg_bytes(astronaut)
    theirs = np.asarray(png(peer.remove(rembg.port, photo, mask_only=True)), dtype=np.float32) / 255
    response = httpx.post(f"{gateway_url}/v1/mask", params={"model": "object-lite"}, content=photo, timeout=60,
                          headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {BOOTSTRAP_KEY}"})
    assert response.status_code == 200, response.text
    ours = np.asarray(png(response.content), dtype=np.float32) / 255
    assert ours.shape == theirs.shape == (512, 512)
    iou = ((ours >= 0.5) & (theirs >= 0.5)).sum() / ((ours >= 0.5) | (theirs >= 0.5)).sum()
    assert iou >= MIN_IOU, f"IoU {iou:.4f}"
    assert np.abs(ours - theirs).mean() <= MAX_MEAN_DIFFERENCE


def test_the_bench_loads_the_peer_through_its_closed_loop_and_checks_each_answer(
        rembg: peer.RunningPeer, astronaut: np.ndarray) -> None:
    photo, size = jpeg_bytes(astronaut[::4, ::4]), (128, 128)
    good = asyncio.run(run_closed_loop(peer.PeerTarget(rembg.port, OPERATIONS["cutout_object-lite"], photo, size),
                                       2, 0.3, 0.0))
    assert good.errors == 0 and good.throughput > 0
    with pytest.raises(BadResponse, match="PNG is 128x128, expected 64x48"):
        asyncio.run(send_once(peer.PeerTarget(rembg.port, OPERATIONS["mask_object-lite"], photo, (64, 48))))
    with pytest.raises(ValueError, match="masks and cutouts"):
        peer.PeerTarget(rembg.port, OPERATIONS["depth_object-lite"], photo, size)


async def send_once(target: peer.PeerTarget) -> None:
    await target.open(1)
    try:
        await target.send(0)
    finally:
        await target.close()


def test_without_its_venv_the_peer_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"run `make \.venv-peer/\.installed`"), peer.running_peer(tmp_path):
        pass


def scenario(operation: str, photo: str, concurrency: int, ours: tuple, theirs: tuple) -> dict:
    """(req/s, p95 ms, CPU ms of each serving process) per target."""
    def point(target: str, rate: float, p95: float) -> dict:
        return {"target": target, "concurrency": concurrency, "throughput": rate, "p50_ms": p95 / 2, "p95_ms": p95,
                "p99_ms": p95, "requests": 20, "errors": 0, "first_error": ""}
    return {"operation": operation, "photo": photo, "points": [point(OURS, *ours[:2]), point(PEER, *theirs[:2])],
            "usage": {OURS: {"cpu_ms_per_request": ours[2], "other_cores": 0.1},
                      PEER: {"cpu_ms_per_request": theirs[2], "other_cores": 0.1}}}


def test_the_section_renders_the_ratios_against_the_targets() -> None:
    ours_cpu, theirs_cpu = {"triton": 300.0, "gateway": 50.0, "rembg": 0.0}, {"triton": 1.0, "rembg": 700.0}
    scenarios = [scenario("mask_object-lite", "1MP", 1, (5.0, 250.0, ours_cpu), (2.0, 600.0, theirs_cpu)),
                 scenario("mask_object-lite", "1MP", 4, (9.0, 500.0, ours_cpu), (3.0, 400.0, theirs_cpu)),
                 scenario("cutout_object-lite", "12MP", 4, (2.0, 3000.0, ours_cpu), (0.4, 9000.0, theirs_cpu))]
    settings = {"photos": ["1MP", "12MP"], "concurrency": [1, 4], "repeats": 1, "duration_s": 1.5, "warmup_s": 0.5,
                "threads": 2, "tuning": {"intra_op_spinning": 0}, "our_layout": {"instances": 1, "intra_op_threads": 2},
                "peer_versions": {"rembg": "2.0.86", "onnxruntime": "1.31.1", "numpy": "2.4.6", "pillow": "13.0.0"},
                "cpu_flags": peer_section.cpu_flags("flags\t\t: fpu avx2 fma avx512f avx512_vnni\n")}
    text = report.markdown([peer_section.section(RUN, settings, scenarios)])
    assert "ours: `matte_object_lite` 1 Triton instance(s) x 2 intra-op thread(s), spinning 0" in text
    assert "CPU flags: avx2, fma, avx512f, avx512_vnni; absent: avx_vnni, avx512_bf16, amx_tile, amx_bf16" in text
    assert "| mask_object-lite | 1MP | 4 | imageserve gateway | 9.00 | 250 | 500 | 350 | 20 | 0 | 0.10 |" in text
    assert "| mask_object-lite | 1MP | 4 | rembg s | 3.00 | 200 | 400 | 700 | 20 | 0 | 0.10 |" in text
    # ours / rembg: serving CPU is Triton + gateway against the rembg process alone
    assert "| mask_object-lite | 1MP | 1 | 2.50x | 0.42x | 0.42x | 0.50x |" in text
    assert "| cutout_object-lite | 12MP | 4 | 5.00x | 0.33x | 0.33x | 0.50x |" in text
    # 3x req/s but p95 1.25x: missed; the 12 MP mask and the 1 MP cutout were not measured; the 12 MP cutout met
    assert "| mask_object-lite | 1MP | >= 3x req/s, p95 no worse (<= 1.00x) | 3.00x | 1.25x | missed |" in text
    assert "| mask_object-lite | 12MP | >= 3x req/s, p95 no worse (<= 1.00x) | n/a | n/a | not measured |" in text
    assert "| cutout_object-lite | 1MP | >= 4x req/s | n/a | n/a | not measured |" in text
    assert "| cutout_object-lite | 12MP | >= 4x req/s | 5.00x | 0.33x | met |" in text
