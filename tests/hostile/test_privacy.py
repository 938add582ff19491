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
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from contract.product import PRODUCT
from contract.schema import Ensemble
from stack.triton import TritonServer
from tests.conftest import REPO
from tests.hostile.cases import PNG_ALLOWED_CHUNKS, png_chunks
from tests.hostile.conftest import BOOTSTRAP_KEY, LoggedGateway
from tests.hostile.privacy_scan import leaks_in, marked_photos, needles, stack_dirs, written_files

pytestmark = pytest.mark.e2e

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
