"""Where one ensemble's time goes: ``python -m load_tests.stage_profile [ENSEMBLE] [--photo 1MP] [--requests 60]``.

Starts its own Triton on free ports, warms the ensemble up, sends ``--requests`` photos one at a time over
gRPC, and prints the client's p50, each step's mean queue and compute time from Triton's statistics (read
with the server's admin key), the minor page faults per request of each python-backend stub the requests
touched (``/proc/<pid>/stat``), and the memory of Triton with its stubs (PSS). The figures of
``load_tests/results/tuning.md``, "the pixel steps' allocator", come from it (the "before" row from the
parent commit of ``triton_models/allocator.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from contract.product import PRODUCT, TENSORS
from load_tests.traffic_mix import SIZES, photo_jpeg
from stack.ports import free_port
from stack.triton import TritonPorts, TritonServer

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
STAGES = ("queue", "compute_input", "compute_infer", "compute_output")


def _inputs(photo: bytes) -> list[grpcclient.InferInput]:
    image = grpcclient.InferInput(TENSORS.image, [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[photo]], dtype=np.object_))
    side = grpcclient.InferInput(TENSORS.max_side, [1, 1], "INT32")
    side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
    return [image, side]


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[7])


def _ns(stats: dict, stage: str) -> int:
    return int(stats.get(stage, {}).get("ns", 0))


def _pss_mib(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their users), MiB."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    return sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) >> 10


def _stage_means(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """Model -> stage -> mean ms per request between two statistics snapshots."""
    earlier = {model["name"]: model.get("inference_stats", {}) for model in before["model_stats"]}
    means = {}
    for model in after["model_stats"]:
        now, then = model.get("inference_stats", {}), earlier.get(model["name"], {})
        count = int(now.get("success", {}).get("count", 0)) - int(then.get("success", {}).get("count", 0))
        if count > 0:
            means[model["name"]] = {stage: _ns(now, stage) - _ns(then, stage) for stage in ("success", *STAGES)}
            means[model["name"]] = {stage: ns / count / 1e6 for stage, ns in means[model["name"]].items()}
    return means


def profile(ensemble: str, photo: bytes, requests: int) -> None:
    ports = TritonPorts(free_port(), free_port(), free_port())
    with TritonServer(REPOSITORY, ports, log_path=Path("build/stage_profile-triton.log")) as server:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{ports.grpc}")
        for _ in range(10):
            client.infer(ensemble, _inputs(photo))
        stubs = {pid: model.split("/")[-3] for pid, model in server.stubs().items()}
        faults = {pid: _minor_faults(pid) for pid in stubs}
        before = client.get_inference_statistics(headers=server.admin_headers, as_json=True)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            client.infer(ensemble, _inputs(photo))
            latencies.append((time.perf_counter() - started) * 1000)
        after = client.get_inference_statistics(headers=server.admin_headers, as_json=True)
        print(f"{ensemble}: {requests} requests, client p50 {statistics.median(latencies):.1f} ms")
        for model, stages in sorted(_stage_means(before, after).items()):
            print(f"  {model:28s} " + "  ".join(f"{stage} {ms:6.2f}" for stage, ms in stages.items()))
        touched = {}
        for pid, model in stubs.items():
            if (extra := _minor_faults(pid) - faults[pid]) > requests:
                touched[model] = touched.get(model, 0) + extra
        print("  minor page faults per request, by python-backend model: "
              + (", ".join(f"{model} {count / requests:.0f}" for model, count in sorted(touched.items())) or "none"))
        memory = _pss_mib(server.process.pid) + sum(_pss_mib(pid) for pid in stubs)
        print(f"  memory (PSS) of Triton and its stubs: {memory} MiB")
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load_tests.stage_profile", description=__doc__.splitlines()[0])
    parser.add_argument("ensemble", nargs="?", default=PRODUCT.ensemble_for(PRODUCT.operation("mask"), "fast", {}))
    parser.add_argument("--photo", choices=list(SIZES), default="1MP")
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    profile(args.ensemble, photo_jpeg(args.photo), args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
