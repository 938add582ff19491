"""``python -m load_tests.tuning``: Triton CPU tuning experiments, each measured against the baseline.

Each variant changes ``TUNING["cpu"]`` values (or a batching option the
generator does not expose yet), is written as a temporary model repository
(configs generated through the schema, model files linked) and served by its
own Triton beside a baseline Triton; the ensembles of both are loaded over
gRPC from this process in alternation, at several concurrencies.
Then, on the baseline: protocol and transfer choices (perf_analyzer over
gRPC, HTTP and system shared memory), the cost of the ensemble's hops
(Triton's own statistics: ensemble time minus the time inside its steps) and
what the gateway adds at concurrency 1, with its SQLite ledger on disk (as
``make run``) and on tmpfs (the same work without fsync).

Writes ``load_tests/results/tuning-runs.md`` and ``.json``; decisions are
logged by hand in ``load_tests/results/tuning.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import tritonclient.grpc as grpcclient

from converters.catalog import load_catalog
from converters.triton_config import TUNING, TargetTuning, repository_configs, to_pbtxt
from load_tests import perf_analyzer
from load_tests.closed_loop import Target, run_closed_loop
from load_tests.operations import Operation, check_operations
from load_tests.photos import SIZES, photo_jpeg
from load_tests.services import MODEL_REPOSITORY, running_gateway, running_triton
from load_tests.stats import Latency, median_of
from load_tests.targets import HttpTarget, TritonGrpcTarget

RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Variant:
    """One tuning experiment: what changes, and what we expect before measuring."""

    name: str
    change: str
    prediction: str
    overrides: dict[str, int] = field(default_factory=dict)
    preferred_batch_sizes: tuple[int, ...] = ()

    def tuning(self, base: TargetTuning) -> TargetTuning:
        overrides: dict[str, Any] = dict(self.overrides)
        if {"model_instances", "intra_op_threads"} & overrides.keys():
            overrides["model_layouts"] = {}  # a variant's instances and threads hold for every model
        return replace(base, **overrides)


# Relative to the committed TUNING["cpu"] (2 instances x 1 ONNX Runtime thread per model, U2-Netp 1 x 2
# non-spinning; load_tests/results/tuning.md has the history, including the runs against the previous 1 x 2).
VARIANTS = {v.name: v for v in (
    Variant("baseline", "TUNING['cpu'] as committed", "reference"),
    Variant("previous_threads", "model_instances 2 -> 1, intra_op_threads 1 -> 2 (the configuration before tuning)",
            "mask fast and depth -20-30% throughput at concurrency 4 (the idle 2-thread pool spin-waits on the core "
            "decode and PNG encode need); U2-Netp p50 at concurrency 1 about 40% lower (2 threads on one image)",
            {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 1}),
    Variant("two_threads_no_spin", "intra_op_threads 1 -> 2, spin-waiting off (session.intra_op.allow_spinning=0)",
            "the throughput of the baseline and the concurrency-1 latency of the previous configuration for U2-Netp",
            {"intra_op_threads": 2, "intra_op_spinning": 0}),
    Variant("one_instance_two_threads_no_spin",
            "model_instances 2 -> 1, intra_op_threads 1 -> 2, spin-waiting off (for U2-Netp, whose one image fills "
            "2 cores)",
            "U2-Netp: the concurrency-1 p50 of 2 threads (~300 ms) without two_threads_no_spin's loss at concurrency 2 "
            "(no oversubscription: 2 threads on 2 cores); mask fast and depth lose at concurrency >= 2 (one instance "
            "cannot overlap its ONNX run with the other requests' decode)",
            {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 0}),
    Variant("two_threads_spinning", "intra_op_threads 1 -> 2 (4 spinning threads on 2 cores)",
            "-15-20% throughput at concurrency 4 for every model: the pools of both instances spin",
            {"intra_op_threads": 2, "intra_op_spinning": 1}),
    Variant("no_batch_delay", "batch_delay_us 2000 -> 0",
            "p50 at concurrency 1 about 2 ms lower (the batcher no longer waits for a second request); "
            "throughput unchanged: on CPU a batch is not cheaper per image (see bench a.)",
            {"batch_delay_us": 0}),
    Variant("long_delay_preferred_4", "batch_delay_us 2000 -> 10000 and preferred_batch_size [4]",
            "p50 up to 10 ms higher at low concurrency, no throughput gain: ONNX Runtime on 2 cores "
            "gives no more images/s at batch 4 than at batch 1",
            {"batch_delay_us": 10_000}, preferred_batch_sizes=(4,)),
    Variant("three_pre_post", "preprocess_instances and postprocess_instances 2 -> 3",
            "+5-10% for mask fast and depth at concurrency 4: Triton used 1.6 of 2 cores at saturation in bench "
            "(each stub idles while a request is handed over); a third instance fills those gaps",
            {"preprocess_instances": 3, "postprocess_instances": 3}),
    Variant("four_pre_post", "preprocess_instances and postprocess_instances 2 -> 4",
            "+10-20% for mask fast and depth at concurrency 8: at saturation Triton used 1.57 of 2 cores for mask "
            "fast (bench.md) while spending less CPU per request than the naive baseline, which used 1.92; more "
            "stub processes could fill the idle 0.4 core if the steps wait on each other's hand-overs",
            {"preprocess_instances": 4, "postprocess_instances": 4}),
    Variant("single_pre_post", "preprocess_instances and postprocess_instances 2 -> 1",
            "throughput at concurrency >= 2 down 20-40% for mask fast and depth: decode and PNG encode are most "
            "of their CPU, and one instance each serialises them",
            {"preprocess_instances": 1, "postprocess_instances": 1}),
)}


def variant_configs(variant: Variant) -> dict[str, dict[str, Any]]:
    """The CPU repository's configs with the variant's tuning, as the generator would write them."""
    sources = load_catalog()
    tuning = variant.tuning(TUNING["cpu"])
    configs = repository_configs(sources, "cpu")
    configs["preprocess"]["instance_group"][0]["count"] = tuning.preprocess_instances
    configs["postprocess"]["instance_group"][0]["count"] = tuning.postprocess_instances
    configs["postprocess"]["parameters"]["png_compress_level"]["string_value"] = str(tuning.png_compress_level)
    for name in sources:
        layout = tuning.layout(name)
        configs[name]["instance_group"][0]["count"] = layout.instances
        configs[name]["parameters"]["intra_op_threads"]["string_value"] = str(layout.intra_op_threads)
        configs[name]["parameters"]["intra_op_spinning"]["string_value"] = str(tuning.intra_op_spinning)
        configs[name]["dynamic_batching"]["max_queue_delay_microseconds"] = tuning.batch_delay_us
        if variant.preferred_batch_sizes:
            configs[name]["dynamic_batching"]["preferred_batch_size"] = list(variant.preferred_batch_sizes)
    return configs


@contextmanager
def variant_repository(variant: Variant, source: Path = MODEL_REPOSITORY) -> Iterator[Path]:
    """A temporary model repository: the variant's configs, everything else linked to ``source``."""
    with tempfile.TemporaryDirectory(prefix=f"imageserve-tuning-{variant.name}-") as tmp:
        root = Path(tmp)
        for name, config in variant_configs(variant).items():
            (root / name).mkdir()
            (root / name / "config.pbtxt").write_text(to_pbtxt(config))
            for item in (source / name).iterdir():
                if item.name not in ("config.pbtxt", "1"):
                    (root / name / item.name).symlink_to(item.resolve())
            if (source / name / "1").exists():
                (root / name / "1").symlink_to((source / name / "1").resolve())
            else:
                (root / name / "1").mkdir()  # ensembles: an empty version folder
        yield root


@dataclass
class Comparison:
    """One variant against the baseline at one point; runs alternate A, B, A, B on the same machine state."""

    variant: str
    operation: str
    concurrency: int
    baseline_rps: float
    variant_rps: float
    baseline_p50_ms: float
    variant_p50_ms: float

    @property
    def throughput_change(self) -> float:
        return self.variant_rps / self.baseline_rps - 1 if self.baseline_rps else float("nan")


def _summary(runs: list) -> tuple[float, float]:
    errors = sum(r.errors for r in runs)
    if errors:
        raise RuntimeError(f"{errors} failed requests: {next(r.first_error for r in runs if r.first_error)}")
    return median_of([r.throughput for r in runs]), Latency.from_seconds([s for r in runs for s in r.latencies_s]).p50_ms


def compare_variant(variant: Variant, operations: list[Operation], photo: str, concurrencies: list[int],
                    repeats: int, duration_s: float) -> list[Comparison]:
    """Baseline and variant served side by side (idle Tritons cost no CPU), loaded in alternation, so the
    machine's drift (other work on 2 shared cores) hits both alike."""
    found = []
    data, size = photo_jpeg(photo), SIZES[photo]
    with (variant_repository(VARIANTS["baseline"]) as base_repo, variant_repository(variant) as variant_repo,
          running_triton(base_repo) as base, running_triton(variant_repo) as changed):
        for operation in operations:
            targets = {name: TritonGrpcTarget(f"127.0.0.1:{server.ports.grpc}", operation, data, size)
                       for name, server in (("baseline", base), ("variant", changed))}
            for concurrency in concurrencies:
                runs: dict[str, list] = {"baseline": [], "variant": []}
                for _ in range(repeats):
                    for name, target in targets.items():
                        runs[name].append(asyncio.run(run_closed_loop(target, concurrency, duration_s, 0.5)))
                (base_rps, base_p50), (variant_rps, variant_p50) = _summary(runs["baseline"]), _summary(runs["variant"])
                found.append(Comparison(variant.name, operation.name, concurrency, base_rps, variant_rps, base_p50,
                                        variant_p50))
                print(f"[tuning] {variant.name} {operation.name} c={concurrency}: {variant_rps:.1f}/s vs baseline "
                      f"{base_rps:.1f}/s ({found[-1].throughput_change:+.0%}); p50 {variant_p50:.0f} vs "
                      f"{base_p50:.0f} ms", file=sys.stderr, flush=True)
    return found


@dataclass
class HopCost:
    """Per request at concurrency 1, from Triton's statistics (ms)."""

    ensemble: str
    ensemble_ms: float
    steps_ms: dict[str, float]  # each step's whole time per request (queue + compute)
    transfer_ms: float  # of which moving tensors into and out of the python-backend stubs

    @property
    def scheduling_ms(self) -> float:
        """Ensemble time not spent inside any step: passing tensors from step to step."""
        return self.ensemble_ms - sum(self.steps_ms.values())


STAT_KINDS = ("success", "compute_input", "compute_output")


def _stats(client: grpcclient.InferenceServerClient, model: str) -> dict[str, tuple[int, int]]:
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]["inference_stats"]
    return {kind: (int(stats.get(kind, {}).get("count", 0)), int(stats.get(kind, {}).get("ns", 0)))
            for kind in STAT_KINDS}


def measure_hops(url: str, operation: Operation, photo: str, duration_s: float) -> HopCost:
    """What the ensemble adds to its three steps: scheduling between them, and tensor transfers in and out."""
    steps = ["preprocess", operation.model, "postprocess"]
    client = grpcclient.InferenceServerClient(url)
    before = {m: _stats(client, m) for m in [operation.ensemble, *steps]}
    target = TritonGrpcTarget(url, operation, photo_jpeg(photo), SIZES[photo])
    asyncio.run(run_closed_loop(target, 1, duration_s, 0.0))
    after = {m: _stats(client, m) for m in before}

    def per_request_ms(model: str, kind: str = "success") -> float:
        requests = after[model]["success"][0] - before[model]["success"][0]
        return (after[model][kind][1] - before[model][kind][1]) / requests / 1e6 if requests else float("nan")

    transfer = sum(per_request_ms(m, kind) for m in steps for kind in ("compute_input", "compute_output"))
    return HopCost(operation.ensemble, per_request_ms(operation.ensemble), {m: per_request_ms(m) for m in steps},
                   transfer)


@dataclass
class TransferPoint:
    operation: str
    transfer: str
    concurrency: int
    throughput: float
    p50_ms: float


TRANSFERS = {"gRPC": ("grpc", "none"), "HTTP": ("http", "none"), "gRPC + system shared memory": ("grpc", "system")}


def measure_transfers(triton, operations: list[Operation], photo: str, concurrencies: list[int],
                      window_ms: int) -> list[TransferPoint]:
    sources = load_catalog()
    found = []
    for operation in operations:
        data = perf_analyzer.input_data(operation.ensemble, photo_jpeg(photo), sources, MODEL_REPOSITORY)
        for label, (protocol, shared_memory) in TRANSFERS.items():
            port = triton.ports.grpc if protocol == "grpc" else triton.ports.http
            for concurrency in concurrencies:
                r = perf_analyzer.run_perf_analyzer(f"127.0.0.1:{port}", operation.ensemble, data, concurrency,
                                                    window_ms, protocol, shared_memory)
                found.append(TransferPoint(operation.name, label, concurrency, r.throughput, r.p50_ms))
    return found


@dataclass
class PathLatency:
    operation: str
    path: str
    p50_ms: float
    p95_ms: float


def _latency(target: Target, duration_s: float) -> Latency:
    run = asyncio.run(run_closed_loop(target, 1, duration_s, 0.5))
    if run.errors:
        raise RuntimeError(f"{run.errors} failed requests: {run.first_error}")
    return Latency.from_seconds(run.latencies_s)


def measure_gateway_paths(triton_grpc_port: int, operation: Operation, photo: str, duration_s: float,
                          repeats: int = 5) -> list[PathLatency]:
    """Concurrency 1: Triton direct, the gateway with its ledger on disk and on tmpfs, interleaved ``repeats`` times
    (a few ms on a ~45 ms request: single runs of a shared 2-core machine do not resolve them)."""
    data, size = photo_jpeg(photo), SIZES[photo]
    direct = TritonGrpcTarget(f"127.0.0.1:{triton_grpc_port}", operation, data, size)
    samples: dict[str, list[Latency]] = {}
    with tempfile.TemporaryDirectory(prefix="imageserve-ledger-", dir="/dev/shm") as shm:
        tmpfs = {"GATEWAY_DATABASE_URL": f"sqlite:///{Path(shm) / 'gateway.db'}"}
        with running_gateway(triton_grpc_port) as on_disk, running_gateway(triton_grpc_port, tmpfs) as in_memory:
            paths: dict[str, Target] = {
                "Triton direct (gRPC)": direct,
                "gateway, SQLite ledger on disk (make run)": HttpTarget(on_disk.port, operation, data, size,
                                                                        on_disk.api_key),
                "gateway, SQLite ledger on tmpfs (no fsync)": HttpTarget(in_memory.port, operation, data, size,
                                                                         in_memory.api_key),
            }
            for _ in range(repeats):
                for label, target in paths.items():
                    samples.setdefault(label, []).append(_latency(target, duration_s))
    return [PathLatency(operation.name, label, median_of([s.p50_ms for s in found]),
                        median_of([s.p95_ms for s in found])) for label, found in samples.items()]


def markdown(comparisons: list[Comparison], hops: list[HopCost], transfers: list[TransferPoint],
             gateway_paths: list[PathLatency], settings: dict) -> str:
    lines = ["# Tuning measurements", "",
             "Generated by `.venv/bin/python -m load_tests.tuning`; decisions are in [tuning.md](tuning.md).", "",
             f"Settings: {settings}. Triton called directly over gRPC (asyncio client). Each variant runs beside "
             "a baseline Triton and the two are loaded in alternation (A, B, A, B), so drift of the shared machine "
             "hits both; req/s is the median of the repeats, p50 pools their requests.", "",
             "| variant | change | operation | concurrency | baseline req/s | variant req/s | throughput change | "
             "baseline p50 ms | variant p50 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c.variant} | {VARIANTS[c.variant].change} | {c.operation} | {c.concurrency} | "
                     f"{c.baseline_rps:.1f} | {c.variant_rps:.1f} | {c.throughput_change:+.0%} | "
                     f"{c.baseline_p50_ms:.0f} | {c.variant_p50_ms:.0f} |")
    if hops:
        lines += ["", "## Cost of the ensemble's hops (baseline, concurrency 1, Triton statistics)", "",
                  "Scheduling = ensemble time minus the time inside its steps; transfer = the steps' compute_input "
                  "+ compute_output (tensors into and out of the python-backend stubs).", "",
                  "| ensemble | ms/request | inside steps ms | scheduling ms | transfer ms |", "|---|---|---|---|---|"]
        for h in hops:
            steps = ", ".join(f"{name} {ms:.1f}" for name, ms in h.steps_ms.items())
            lines.append(f"| {h.ensemble} | {h.ensemble_ms:.1f} | {steps} | {h.scheduling_ms:.1f} | "
                         f"{h.transfer_ms:.1f} |")
    if transfers:
        lines += ["", "## Protocol and transfer (baseline, perf_analyzer)", "",
                  "| operation | transfer | concurrency | infer/s | p50 ms |", "|---|---|---|---|---|"]
        for t in transfers:
            lines.append(f"| {t.operation} | {t.transfer} | {t.concurrency} | {t.throughput:.1f} | {t.p50_ms:.1f} |")
    if gateway_paths:
        lines += ["", "## What the gateway adds (baseline, concurrency 1, median of 5 interleaved runs)", "",
                  "| operation | path | p50 ms | p95 ms |", "|---|---|---|---|"]
        for g in gateway_paths:
            lines.append(f"| {g.operation} | {g.path} | {g.p50_ms:.1f} | {g.p95_ms:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load_tests.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "baseline"),
                        help=f"comma-separated from {', '.join(v for v in VARIANTS if v != 'baseline')}")
    parser.add_argument("--operations", default="mask_fast,depth,mask_quality")
    parser.add_argument("--photo", choices=list(SIZES), default="1MP")
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--variants-only", action="store_true",
                        help="skip the hop, transfer and gateway measurements on the baseline")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS) | ({"baseline"} & set(names)))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    try:
        operations = check_operations([o.strip() for o in args.operations.split(",") if o.strip()])
        concurrencies = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    except ValueError as exc:
        parser.error(str(exc))
    if not concurrencies or concurrencies[0] < 1 or args.repeats < 1 or args.duration <= 0:
        parser.error("--concurrency values, --repeats and --duration must be positive")
    settings = {"photo": args.photo, "concurrency": concurrencies, "repeats": args.repeats, "duration_s": args.duration}
    started = time.monotonic()
    comparisons = []
    for name in names:
        comparisons += compare_variant(VARIANTS[name], operations, args.photo, concurrencies, args.repeats,
                                       args.duration)
    hops, transfers, gateway_paths = [], [], []
    if not args.variants_only:
        with variant_repository(VARIANTS["baseline"]) as repository, running_triton(repository) as triton:
            url = f"127.0.0.1:{triton.ports.grpc}"
            hops = [measure_hops(url, op, args.photo, args.duration) for op in operations]
            transfers = measure_transfers(triton, operations, args.photo, [1, max(concurrencies)],
                                          max(1000, int(args.duration * 1000)))
            gateway_paths = measure_gateway_paths(triton.ports.grpc, operations[0], args.photo, args.duration)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tuning-runs.md").write_text(markdown(comparisons, hops, transfers, gateway_paths, settings))
    (args.out / "tuning-runs.json").write_text(json.dumps(
        {"settings": settings,
         "comparisons": [{**asdict(c), "throughput_change": c.throughput_change} for c in comparisons],
         "hops": [{**asdict(h), "scheduling_ms": h.scheduling_ms} for h in hops], "transfers": [asdict(t) for t in transfers],
         "gateway_paths": [asdict(g) for g in gateway_paths]},
        indent=1) + "\n")
    print(f"[tuning] done in {time.monotonic() - started:.0f} s: {args.out / 'tuning-runs.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
