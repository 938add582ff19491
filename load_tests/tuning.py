"""Bench section ``tuning``: Triton CPU tuning variants, each measured against the committed tuning.

Each variant changes ``TUNING["cpu"]`` values (or a batching option the generator does not expose yet),
is written as a temporary model repository (configs generated through the schema, model files linked)
and served by its own Triton beside a baseline Triton; the ensembles of both are loaded over gRPC from
this process in alternation (A, B, A, B), so the drift of a shared machine hits both alike. Then, on the
baseline unless ``--variants-only``: the cost of the ensemble's hops (Triton's own statistics: ensemble
time minus the time inside its steps). The predictions and the decisions are logged by hand in
``load_tests/results/tuning.md``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import tritonclient.grpc as grpcclient

from converters.catalog import load_catalog
from converters.triton_config import TUNING, TargetTuning, repository_configs, to_pbtxt
from load_tests.closed_loop import RunResult, TritonGrpcTarget, run_closed_loop
from load_tests.operations import Operation
from load_tests.photos import SIZES, photo_jpeg
from load_tests.results import Comparison, HopCost, Provenance, TuningRun
from load_tests.services import MODEL_REPOSITORY, running_triton
from load_tests.stats import Latency, median_of


@dataclass(frozen=True)
class Variant:
    """One tuning experiment: what changes."""

    name: str
    change: str
    overrides: dict[str, int] = field(default_factory=dict)
    preferred_batch_sizes: tuple[int, ...] = ()

    def tuning(self, base: TargetTuning) -> TargetTuning:
        overrides: dict[str, Any] = dict(self.overrides)
        if {"model_instances", "intra_op_threads"} & overrides.keys():
            overrides["model_layouts"] = {}  # a variant's instances and threads hold for every model
        return replace(base, **overrides)


# Relative to the committed TUNING["cpu"] (2 instances x 1 ONNX Runtime thread per model, U2-Netp 1 x 2
# non-spinning; tuning.md has the history, including the runs against the previous 1 x 2).
VARIANTS = {v.name: v for v in (
    Variant("baseline", "TUNING['cpu'] as committed"),
    Variant("previous_threads", "model_instances 2 -> 1, intra_op_threads 1 -> 2 (the configuration before tuning)",
            {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 1}),
    Variant("two_threads_no_spin", "intra_op_threads 1 -> 2, spin-waiting off (session.intra_op.allow_spinning=0)",
            {"intra_op_threads": 2, "intra_op_spinning": 0}),
    Variant("one_instance_two_threads_no_spin",
            "model_instances 2 -> 1, intra_op_threads 1 -> 2, spin-waiting off (for U2-Netp, whose one image fills "
            "2 cores)", {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 0}),
    Variant("two_threads_spinning", "intra_op_threads 1 -> 2 (4 spinning threads on 2 cores)",
            {"intra_op_threads": 2, "intra_op_spinning": 1}),
    Variant("no_batch_delay", "batch_delay_us 2000 -> 0", {"batch_delay_us": 0}),
    Variant("long_delay_preferred_4", "batch_delay_us 2000 -> 10000 and preferred_batch_size [4]",
            {"batch_delay_us": 10_000}, preferred_batch_sizes=(4,)),
    Variant("three_pre_post", "preprocess_instances and postprocess_instances 2 -> 3",
            {"preprocess_instances": 3, "postprocess_instances": 3}),
    Variant("four_pre_post", "preprocess_instances and postprocess_instances 2 -> 4",
            {"preprocess_instances": 4, "postprocess_instances": 4}),
    Variant("single_pre_post", "preprocess_instances and postprocess_instances 2 -> 1",
            {"preprocess_instances": 1, "postprocess_instances": 1}),
)}
EXPERIMENTS = [name for name in VARIANTS if name != "baseline"]


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


def _summary(runs: list[RunResult]) -> tuple[float, float]:
    """Median req/s of the runs and the p50 (ms) of all their requests; a failed request fails the variant."""
    errors = sum(r.errors for r in runs)
    if errors:
        raise RuntimeError(f"{errors} failed requests: {next(r.first_error for r in runs if r.first_error)}")
    latencies = [s for r in runs for s in r.latencies_s]
    return median_of([r.throughput for r in runs]), Latency.from_seconds(latencies).p50_ms


def compare_variant(variant: Variant, operations: list[Operation], photo: str, concurrencies: list[int],
                    repeats: int, duration_s: float) -> list[Comparison]:
    """Baseline and variant served side by side (idle Tritons cost no CPU), loaded in alternation."""
    found = []
    data, size = photo_jpeg(photo), SIZES[photo]
    with (variant_repository(VARIANTS["baseline"]) as base_repo, variant_repository(variant) as variant_repo,
          running_triton(base_repo) as base, running_triton(variant_repo) as changed):
        for operation in operations:
            targets = [TritonGrpcTarget(f"127.0.0.1:{server.ports.grpc}", operation, data, size)
                       for server in (base, changed)]
            for concurrency in concurrencies:
                runs: list[list[RunResult]] = [[], []]
                for _ in range(repeats):
                    for side, target in enumerate(targets):
                        runs[side].append(asyncio.run(run_closed_loop(target, concurrency, duration_s, 0.5)))
                (base_rps, base_p50), (variant_rps, variant_p50) = _summary(runs[0]), _summary(runs[1])
                change = variant_rps / base_rps - 1 if base_rps else float("nan")
                found.append(Comparison(variant.name, variant.change, operation.name, concurrency, base_rps,
                                        variant_rps, base_p50, variant_p50, change))
                print(f"[bench tuning] {variant.name} {operation.name} c={concurrency}: {variant_rps:.1f}/s vs "
                      f"baseline {base_rps:.1f}/s ({change:+.0%})", file=sys.stderr, flush=True)
    return found


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

    steps_ms = {m: per_request_ms(m) for m in steps}
    transfer = sum(per_request_ms(m, kind) for m in steps for kind in ("compute_input", "compute_output"))
    ensemble_ms = per_request_ms(operation.ensemble)
    return HopCost(operation.ensemble, ensemble_ms, steps_ms, transfer, ensemble_ms - sum(steps_ms.values()))


def measure_tuning(measured: Provenance, variants: list[str], operations: list[Operation], photo: str,
                   concurrencies: list[int], repeats: int, duration_s: float, variants_only: bool) -> TuningRun:
    settings = {"photo": photo, "concurrency": concurrencies, "repeats": repeats, "duration_s": duration_s,
                "baseline": asdict(TUNING["cpu"])}
    run = TuningRun(measured, settings)
    for name in variants:
        run.comparisons += compare_variant(VARIANTS[name], operations, photo, concurrencies, repeats, duration_s)
    if not variants_only:
        with variant_repository(VARIANTS["baseline"]) as repository, running_triton(repository) as triton:
            run.hops = [measure_hops(f"127.0.0.1:{triton.ports.grpc}", op, photo, duration_s) for op in operations]
    return run
