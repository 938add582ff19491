"""Image bytes stay in memory: nothing the stack writes contains them.

Photos carrying a random marker (in a JPEG comment, EXIF, a PNG text chunk,
the file name, and as raw pixel rows) go through every endpoint, model and
upload form, plus requests that fail at the gateway and inside Triton. Then
every file the stack could have written during the test (working dirs, temp
dirs, home, the gateway's database, Triton's log, the gateway's captured
stdout/stderr) is searched for the marker (raw, hex, base64) and for
slices of the uploaded files. Responses must not echo it either, and the
outputs must carry no metadata.
"""

from __future__ import annotations

import base64
import mmap
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from contract.product import PRODUCT
from contract.schema import Ensemble
from stack.triton import TritonServer
from tests.conftest import REPO
from tests.hostile import images as img
from tests.hostile.cases import PNG_ALLOWED_CHUNKS, png_chunks
from tests.hostile.conftest import BOOTSTRAP_KEY, LoggedGateway

pytestmark = pytest.mark.e2e

# Installed toolchains under $HOME: large, and nothing in the stack writes there.
SKIPPED_DIRS = {".git", ".pyenv", ".rustup", ".cargo", ".m2", "proc", "sys"}
# Every operation with every one of its variants (models).
def _query(ensemble: Ensemble) -> tuple[dict[str, object], tuple[str, ...]]:
    """The variant, and the first alternative of a required one_of (background needs a colour, crop an aspect,
    erase a mask): its parameters' examples, and the image parts it names (sent as the marked photo too)."""
    op = ensemble.operation
    query: dict[str, object] = {op.variant_parameter: ensemble.variant} if ensemble.variant else {}
    parts = {part.name for part in op.image_parts}
    first = op.one_of[0] if op.one_of and op.one_of_required else ()
    query.update({name: op.parameter(name).example for name in first if name not in parts})
    if ensemble.with_faces and op.has_plain_twin(ensemble.variant):  # the twin with the faces step: a face layer
        name, needing = op.faces_for
        query[name] = needing[-1]
    return query, tuple(name for name in first if name in parts)


ENDPOINTS = [(PRODUCT.path(e.operation), *_query(e)) for e in PRODUCT.ensembles()]
# And every image part the first alternative leaves out (a new background, a style image), once per operation.
ENDPOINTS += [(PRODUCT.path(op), {}, (part.name,)) for op in PRODUCT.operations for part in op.image_parts
              if not (op.one_of and op.one_of_required and part.name in op.one_of[0])]
# Upscaling takes seconds per tile on the CPU: its photo has half the others' sides (96x128, one tile).
UPSCALED = {PRODUCT.path(op) for op in PRODUCT.operations if op.output_scale}


def marked_photos(marker: bytes, pixels: np.ndarray, step: int = 1) -> dict[str, tuple[bytes, str]]:
    """JPEG and PNG of the photo (every ``step``-th pixel) with ``pixels`` pasted in and ``marker`` in their
    metadata."""
    photo = img.photo()[::step, ::step].copy()
    photo[:pixels.shape[0], :pixels.shape[1]] = pixels
    exif = Image.Exif()
    exif[0x010E] = marker.decode()  # ImageDescription
    jpeg = img.encode(photo, "JPEG", quality=95, exif=exif, comment=marker)
    info = PngInfo()
    info.add_text("Comment", marker.decode())
    png = img.encode(photo, "PNG", pnginfo=info)
    return {"jpeg": (jpeg, "image/jpeg"), "png": (png, "image/png")}


def needles(marker: bytes, files: list[bytes], pixels: np.ndarray) -> dict[str, bytes]:
    """What a leak would look like on disk: the marker in several encodings, file slices, raw pixel rows."""
    found = {"marker": marker, "marker hex": marker.hex().encode()}
    for shift in range(3):  # base64 of the marker at each alignment: the 4-character groups made of marker bytes only
        first, last = -(-shift // 3), (shift + len(marker)) // 3
        found[f"marker base64/{shift}"] = base64.b64encode(b"\x00" * shift + marker)[4 * first:4 * last]
    for index, data in enumerate(files):
        middle = len(data) // 2
        found[f"file {index} bytes"] = data[middle:middle + 48]
    found["pixel row"] = pixels[0].tobytes()
    return found


def written_files(roots: list[Path], since: float) -> Iterator[Path]:
    """Regular files under ``roots`` modified at or after ``since`` (no symlinks followed)."""
    stack = [root for root in roots if root.is_dir()]
    seen: set[Path] = set()
    while stack:
        directory = stack.pop()
        if directory in seen:
            continue
        seen.add(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime >= since:
                    yield Path(entry.path)
            except OSError:
                continue


def leaks_in(path: Path, patterns: dict[str, bytes]) -> list[str]:
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return []
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as content:
                return [f"{name} in {path}" for name, needle in patterns.items() if content.find(needle) >= 0]
    except (OSError, ValueError):
        return []


def stack_dirs(*pids: int) -> list[Path]:
    """Working directories of the stack's processes and their children."""
    dirs = set()
    for pid in pids:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                dirs.add(Path(process.cwd()))
            except psutil.Error:
                continue
    return sorted(dirs)


@pytest.fixture
def client(strict_gateway: LoggedGateway) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    with httpx.Client(base_url=strict_gateway.url, timeout=60, headers=auth) as http:
        yield http


def test_image_bytes_are_never_written_anywhere(client: httpx.Client, strict_gateway: LoggedGateway,
                                                triton: TritonServer) -> None:
    since = time.time() - 1
    marker = f"imageserve-privacy-{secrets.token_hex(16)}".encode()
    pixels = np.random.default_rng(secrets.randbits(32)).integers(0, 256, (4, 16, 3), dtype=np.uint8)
    photos, small = marked_photos(marker, pixels), marked_photos(marker, pixels, step=2)
    answers: list[httpx.Response] = []

    for (path, params, parts) in ENDPOINTS:
        for name, (data, media_type) in (small if path in UPSCALED else photos).items():
            if not parts:  # a required part (erase's mask) needs a form
                answers.append(client.post(path, params=params, content=data, headers={"Content-Type": media_type}))
            files = {field: (f"{marker.decode()}.{field}.{name}", data, media_type) for field in ("image", *parts)}
            answers.append(client.post(path, params=params, files=files))
    assert [answer.status_code for answer in answers] == [200] * len(answers), [a.text[:200] for a in answers]

    jpeg = photos["jpeg"][0]
    failing = [
        (jpeg[:len(jpeg) // 2], "image/jpeg", 422),  # refused by the gateway's header check
        (_bad_huffman(jpeg), "image/jpeg", 422),  # refused by the decoder inside Triton
        (b"GIF89a" + marker + bytes(64), "image/gif", 415),
        (jpeg, "image/png", 415),
        (b"--b\r\n" + marker + b"\r\n\r\n" + jpeg, "multipart/form-data; boundary=b", 400),
    ]
    for data, media_type, status in failing:
        answer = client.post("/v1/cutout", content=data, headers={"Content-Type": media_type})
        assert answer.status_code == status, answer.text
        answers.append(answer)

    patterns = needles(marker, [data for data, _ in (*photos.values(), *small.values())], pixels)
    for answer in answers:
        if answer.status_code == 200 and answer.headers["content-type"] == "application/json":  # /v1/layers
            results = [base64.b64decode(data) for data in answer.json()["layers"].values()]
        else:
            results = [answer.content] if answer.status_code == 200 else []
        for result in results:
            assert set(png_chunks(result)) <= PNG_ALLOWED_CHUNKS
        echoed = [name for name, needle in patterns.items() if any(needle in r for r in (answer.content, *results))]
        assert not echoed and marker.decode() not in str(answer.headers), (echoed, answer.text[:300])
    assert marker not in client.get("/metrics").content

    time.sleep(0.5)  # let buffered log lines reach their files
    roots = {REPO, Path(tempfile.gettempdir()), Path("/var/tmp"), Path.home(),
             *stack_dirs(strict_gateway.process.pid, triton.process.pid)}
    candidates = set(written_files(sorted(roots), since))
    always = [strict_gateway.log_path, triton.log_path, strict_gateway.database_path,
              *strict_gateway.database_path.parent.glob(strict_gateway.database_path.name + "-*")]
    scanned = candidates | {path for path in always if path is not None and path.exists()}
    assert strict_gateway.log_path in scanned and strict_gateway.database_path in scanned
    assert strict_gateway.database_path.stat().st_size > 0
    leaks = [leak for path in sorted(scanned) for leak in leaks_in(path, patterns)]
    assert not leaks, leaks


def _bad_huffman(jpeg: bytes) -> bytes:
    """The marked JPEG with a bogus Huffman table: headers pass, the decoder fails."""
    start = jpeg.index(b"\xff\xc4")
    return jpeg[:start + 5] + b"\xff" * 16 + jpeg[start + 21:]


def test_the_scan_finds_a_planted_leak(tmp_path: Path) -> None:
    """The search itself works: a file written during the test holding the marker is reported."""
    since = time.time() - 1
    marker = f"imageserve-privacy-{secrets.token_hex(16)}".encode()
    pixels = np.zeros((1, 16, 3), np.uint8)
    data = marked_photos(marker, pixels)["png"][0]
    patterns = needles(marker, [data], pixels)
    (tmp_path / "spooled.bin").write_bytes(b"prefix" + data)
    (tmp_path / "log.txt").write_text(f"request body: {base64.b64encode(b'xy' + marker).decode()}\n")
    found = [leak for path in written_files([tmp_path], since) for leak in leaks_in(path, patterns)]
    assert any("spooled.bin" in leak and leak.startswith("marker in") for leak in found), found
    assert any("spooled.bin" in leak and leak.startswith("file 0 bytes") for leak in found), found
    assert any("log.txt" in leak and "base64" in leak for leak in found), found
