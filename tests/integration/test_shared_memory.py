"""Triton's python-backend shared-memory regions hold recent photos: private to the server's user, and
none left behind by a server that was killed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from stack.triton import TritonServer, remove_stale_shared_memory
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.integration
REGIONS = "/dev/shm/triton_python_backend_shm_region_*"


def test_the_servers_regions_are_private_to_its_user(triton: TritonServer, astronaut) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.ports.grpc}")
    photo = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
    photo.set_data_from_numpy(np.array([[jpeg_bytes(astronaut)]], dtype=np.object_))
    side = grpcclient.InferInput("MAX_SIDE", [1, 1], "INT32")
    side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
    client.infer("photo_depth_portrait", [photo, side])
    regions = triton.regions()
    assert regions, "the python-backend steps map no shared memory: the check would see nothing"
    for path in regions:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}: other users could read the photos in it"


def test_regions_no_live_process_maps_are_removed_at_start_and_stop() -> None:
    stale = Path("/dev/shm/triton_python_backend_shm_region_test-stale-" + os.urandom(4).hex())
    stale.write_bytes(b"marker photo bytes")  # what a SIGKILLed server leaves behind
    try:
        remove_stale_shared_memory()
        assert not stale.exists()
    finally:
        stale.unlink(missing_ok=True)
