"""Bench section ``tuning``: Triton CPU tuning variants, each measured against the committed tuning.

Each variant changes ``TUNING["cpu"]`` values (or a batching option the generator does not expose), is written
as a temporary model repository (configs generated through the schema, model files linked) and served by its
own Triton beside a baseline Triton; both are loaded over gRPC in alternation (A, B, A, B), so the drift of a
shared machine hits both alike (idle Tritons cost no CPU). The decisions are logged in ``results/tuning.md``;
the cost of the ensemble's hops, measured once from Triton's statistics, is kept in bench.md (tuning run 1).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from statistics import median
from typing import Any

from contract.product import PRODUCT
from converters.catalog import load_catalog
from converters.triton_config import TUNING, fed_by_decode, repository_configs, to_pbtxt
from load_tests.closed_loop import TritonGrpcTarget, percentiles_ms, run_closed_loop
from load_tests.operations import Operation
from load_tests.report import Section, section
from load_tests.services import MODEL_REPOSITORY, running_triton
from load_tests.traffic_mix import SIZES, photo_jpeg

# name -> (what changes, TUNING["cpu"] overrides, preferred batch sizes), relative to the committed tuning
# (2 instances x 1 ONNX Runtime thread per model, U2-Netp 1 x 2 non-spinning; tuning.md has the history).
VARIANTS: dict[str, tuple[str, dict[str, int], list[int]]] = {
    "baseline": ("TUNING['cpu'] as committed", {}, []),
    "previous_threads": ("model_instances 2 -> 1, intra_op_threads 1 -> 2 (the configuration before tuning)",
                         {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 1}, []),
    "two_threads_no_spin": ("intra_op_threads 1 -> 2, spin-waiting off (session.intra_op.allow_spinning=0)",
                            {"intra_op_threads": 2, "intra_op_spinning": 0}, []),
    "one_instance_two_threads_no_spin": ("model_instances 2 -> 1, intra_op_threads 1 -> 2, spin-waiting off (for "
                                         "U2-Netp, whose one image fills 2 cores)",
                                         {"model_instances": 1, "intra_op_threads": 2, "intra_op_spinning": 0}, []),
    "two_threads_spinning": ("intra_op_threads 1 -> 2 (4 spinning threads on 2 cores)",
                             {"intra_op_threads": 2, "intra_op_spinning": 1}, []),
    "no_batch_delay": ("batch_delay_us 2000 -> 0", {"batch_delay_us": 0}, []),
    "long_delay_preferred_4": ("batch_delay_us 2000 -> 10000 and preferred_batch_size [4]",
                               {"batch_delay_us": 10_000}, [4]),
    **{name: (f"preprocess_instances and postprocess_instances 2 -> {n}",
              {"preprocess_instances": n, "postprocess_instances": n}, [])
       for name, n in (("three_pre_post", 3), ("four_pre_post", 4), ("single_pre_post", 1))},
}
EXPERIMENTS = [name for name in VARIANTS if name != "baseline"]


def variant_configs(name: str) -> dict[str, dict[str, Any]]:
    """The CPU repository's configs with the variant's tuning, as the generator would write them."""
    _, overrides, preferred = VARIANTS[name]
    if {"model_instances", "intra_op_threads"} & overrides.keys():
        overrides = {**overrides, "model_layouts": {}}  # a variant's instances and threads hold for every model
    tuned, sources = replace(TUNING["cpu"], **overrides), load_catalog()
    configs = repository_configs(sources, "cpu")
    for step in (PRODUCT.decode_step, PRODUCT.compose_step):
        configs[step]["instance_group"][0]["count"] = getattr(tuned, f"{step}_instances")
    configs[PRODUCT.compose_step]["parameters"]["png_compress_level"]["string_value"] = str(tuned.png_compress_level)
    for model in (name for name in PRODUCT.models() if fed_by_decode(sources[name])):  # not the pixel or face models
        layout, config = tuned.layout(model), configs[model]
        config["instance_group"][0]["count"] = layout.instances
        config["parameters"]["intra_op_threads"]["string_value"] = str(layout.intra_op_threads)
        config["parameters"]["intra_op_spinning"]["string_value"] = str(tuned.intra_op_spinning)
        config["dynamic_batching"]["max_queue_delay_microseconds"] = tuned.batch_delay_us
        if preferred:
            config["dynamic_batching"]["preferred_batch_size"] = preferred
    return configs


@contextmanager
def variant_repository(name: str, source: Path = MODEL_REPOSITORY) -> Iterator[Path]:
    """A temporary model repository: the variant's configs, everything else linked to ``source``."""
    with tempfile.TemporaryDirectory(prefix=f"imageserve-tuning-{name}-") as tmp:
        for model, config in variant_configs(name).items():
            (Path(tmp) / model).mkdir()
            (Path(tmp) / model / "config.pbtxt").write_text(to_pbtxt(config))
            for item in (source / model).iterdir():
                if item.name != "config.pbtxt":
                    (Path(tmp) / model / item.name).symlink_to(item.resolve())
            if not (source / model / "1").exists():
                (Path(tmp) / model / "1").mkdir()  # ensembles: an empty version folder
        yield Path(tmp)


def compare(name: str, operations: list[Operation], photo: str, concurrencies: list[int], repeats: int,
            duration_s: float) -> list[dict]:
    """Baseline and variant served side by side, loaded in alternation; a failed request fails the variant."""
    rows, data, size = [], photo_jpeg(photo), SIZES[photo]
    with (variant_repository("baseline") as base_repo, variant_repository(name) as variant_repo,
          running_triton(base_repo) as base, running_triton(variant_repo) as changed):
        for operation in operations:
            targets = [TritonGrpcTarget(f"127.0.0.1:{s.ports.grpc}", operation, data, size) for s in (base, changed)]
            for concurrency in concurrencies:
                runs = [[], []]
                for _ in range(repeats):
                    for side, target in enumerate(targets):
                        runs[side].append(asyncio.run(run_closed_loop(target, concurrency, duration_s, 0.5)))
                if any(r.errors for side in runs for r in side):
                    raise RuntimeError(f"{name}: failed requests: {next(r.first_error for s in runs for r in s)}")
                base_rps, variant_rps = (median(r.throughput for r in side) for side in runs)
                base_p50, variant_p50 = (percentiles_ms([s for r in side for s in r.latencies_s], (50,))[0]
                                         for side in runs)
                change = variant_rps / base_rps - 1 if base_rps else float("nan")
                rows.append({"variant": name, "change": VARIANTS[name][0], "operation": operation.name,
                             "concurrency": concurrency, "baseline_rps": base_rps, "variant_rps": variant_rps,
                             "throughput_change": change, "baseline_p50_ms": base_p50, "variant_p50_ms": variant_p50})
                print(f"[bench tuning] {name} {operation.name} c={concurrency}: {variant_rps:.1f}/s vs baseline "
                      f"{base_rps:.1f}/s ({change:+.0%})", file=sys.stderr, flush=True)
    return rows


COMPARISON_COLUMNS = [["variant", "{variant}"], ["change", "{change}"], ["operation", "{operation}"],
                      ["concurrency", "{concurrency}"], ["baseline req/s", "{baseline_rps:.1f}"],
                      ["variant req/s", "{variant_rps:.1f}"], ["throughput change", "{throughput_change:+.0%}"],
                      ["baseline p50 ms", "{baseline_p50_ms:.0f}"], ["variant p50 ms", "{variant_p50_ms:.0f}"]]


def measure(measured: dict, number: int, variants: list[str], operations: list[Operation], photo: str,
            concurrencies: list[int], repeats: int, duration_s: float) -> Section:
    """Tuning run ``number``; the first carries the heading of them all."""
    settings = {"photo": photo, "concurrency": concurrencies, "repeats": repeats, "duration_s": duration_s}
    rows = [row for name in variants for row in compare(name, operations, photo, concurrencies, repeats, duration_s)]
    parts = [{"heading": "## Tuning runs: each variant beside a baseline Triton, loaded in alternation", "text": [
        "Triton called directly over gRPC (asyncio client), A, B, A, B, so drift of the shared machine hits both; "
        "req/s is the median of the repeats, p50 pools their requests. The baseline is the tuning committed at the "
        "time of the run; decisions are in [tuning.md](tuning.md)."]}] if number == 1 else []
    parts.append({"heading": f"### Tuning run {number}: {measured['at']}", "rows": rows,
                  "text": [f"`{measured['command']}`; settings {settings}."], "columns": COMPARISON_COLUMNS})
    return section("tuning", f"tuning run {number}", measured, parts, settings=settings, baseline=asdict(TUNING["cpu"]))
