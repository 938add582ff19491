"""The pixel steps keep their large buffers mapped between requests (triton_models.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import resource, sys
import numpy as np
from triton_models.allocator import keep_large_buffers

def faults_per_round() -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        plane = np.ones((1024, 1024), np.float32)  # a 1 MP float plane, 4 MiB, as compose makes them
        del plane
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20

mapped = faults_per_round()
unset = keep_large_buffers()
faults_per_round()  # the first round after the change grows the heap once
print(mapped, faults_per_round(), unset)
"""


def test_large_buffers_stop_faulting_in_once_the_thresholds_are_set() -> None:
    # A fixed, low mmap threshold: what the stubs showed (5,700 faults per 1 MP mask in postprocess).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60,
                            check=True)
    mapped, kept, unset = result.stdout.split()
    assert unset == "None"
    assert float(mapped) > 256  # every 4 MiB plane faults in afresh (measured: ~500 faults a plane)
    assert float(kept) < 10, kept


def test_the_stage_profile_divides_each_steps_time_by_its_requests() -> None:
    from load_tests.stage_profile import _stage_means

    def snapshot(count: int, ns: int) -> dict:
        stats = {stage: {"count": count, "ns": ns} for stage in ("success", "queue", "compute_input",
                                                                  "compute_infer", "compute_output")}
        return {"model_stats": [{"name": "postprocess", "inference_stats": stats}, {"name": "idle"}]}

    means = _stage_means(snapshot(10, 1_000_000), snapshot(30, 41_000_000))
    assert means == {"postprocess": dict.fromkeys(("success", "queue", "compute_input", "compute_infer",
                                                   "compute_output"), 2.0)}
