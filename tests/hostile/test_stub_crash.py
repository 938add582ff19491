"""A python-backend stub SIGKILLed while it holds marked photos (the OOM killer's usual pick).

Triton 2.51 neither restarts such a stub nor marks its model unready: every request its instance
gets fails from then on, while the server reports itself ready (measured: `depth_0_1` killed, half
of the depth requests failed, and kept failing). The local stack's supervisor restarts the server
when a stub dies (`TritonServer.why_broken`); the chart's liveness probe does it in a cluster. Here:
the broken stub is seen, the restarted server serves every request again, none of the shared-memory
regions from before the crash is left, and the privacy scan finds the marker nowhere on disk.
"""

from __future__ import annotations

import glob
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from contract.product import TENSORS
from stack.triton import REGIONS, TritonPorts, TritonServer
from tests.conftest import MODEL_REPOSITORY, free_port
from tests.hostile.privacy_scan import leaks_in, marked_photos, needles, written_files

pytestmark = pytest.mark.e2e

ENSEMBLE = "photo_depth_portrait"  # preprocess (python) -> depth -> compose (python)
KILLED = "/preprocess/"  # the stub that decodes the photo: the marked bytes pass through its region


def _infer(client: grpcclient.InferenceServerClient, photo: bytes) -> None:
    image = grpcclient.InferInput(TENSORS.image, [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[photo]], dtype=np.object_))
    side = grpcclient.InferInput(TENSORS.max_side, [1, 1], "INT32")
    side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
    client.infer(ENSEMBLE, [image, side])


def _region_holding(needle: bytes, regions: set[str]) -> list[str]:
    found = []
    for path in regions:
        try:
            if needle in Path(path).read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def test_a_killed_stub_is_seen_and_the_restarted_server_keeps_no_photo(tmp_path: Path) -> None:
    since = time.time() - 1
    marker = f"imageserve-stub-crash-{secrets.token_hex(16)}".encode()
    pixels = np.random.default_rng(secrets.randbits(32)).integers(0, 256, (4, 16, 3), dtype=np.uint8)
    photo = marked_photos(marker, pixels)["jpeg"][0]
    ports = TritonPorts(free_port(), free_port(), free_port())
    with TritonServer(MODEL_REPOSITORY, ports, log_path=tmp_path / "triton.log") as server:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{ports.grpc}")
        _infer(client, photo)
        assert server.why_broken() is None
        before = server.regions()
        assert before and _region_holding(marker, before), "the marked photo is in no region: nothing to check"

        stop, errors = threading.Event(), []

        def keep_sending() -> None:
            while not stop.is_set():
                try:
                    _infer(client, photo)
                except InferenceServerException as error:
                    errors.append(error.message())

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            (victim,) = [pid for pid, model in server.stubs().items() if KILLED in model][:1]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while (reason := server.why_broken()) is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            sender.join()
        assert reason is not None and "preprocess" in reason, reason
        assert all("not healthy" in error for error in errors), errors  # failures meanwhile: the dead stub's only
        assert server.is_ready(), "Triton 2.51 still says ready: only the stub check sees the broken instance"

        server.restart()
        assert server.why_broken() is None
        for _ in range(8):  # both preprocess instances serve again
            _infer(client, photo)
        after = server.regions()
        left = before & set(glob.glob(REGIONS))
        assert after and not left, f"regions from before the crash remain: {sorted(left)[:3]}"
        client.close()
    assert not after & set(glob.glob(REGIONS)), "the stopped server left regions behind"
    time.sleep(0.5)  # buffered log lines reach their files
    patterns = needles(marker, [photo], pixels)
    scanned = set(written_files([tmp_path, Path.cwd()], since)) | {tmp_path / "triton.log"}
    leaks = [leak for path in sorted(scanned) for leak in leaks_in(path, patterns)]
    assert not leaks, leaks
