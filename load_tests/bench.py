"""``python -m load_tests.bench`` (``make bench``): the one benchmark, into the one results document.

Sections (``--sections``; the default is every one but tuning):
  throughput   a. each ONNX model alone (ONNX Runtime on preprocessed tensors, all cores, best batch);
               b. the Triton ensemble called directly over gRPC (asyncio client);
               c. the same operation through the gateway over HTTP, at the same concurrencies;
               d. a naive baseline: one FastAPI process doing decode + ONNX Runtime + PNG inline;
               with CPU and peak memory per process
  latency      every operation, one request at a time through the gateway, at 1 MP and 12 MP (pairs that
               throughput measured at concurrency 1 in the same run are taken from there)
  decoding     e. preprocessing alone: JPEG to model input, with and without reduced-size decoding
  start        ``make run`` to ready with everything built, and each operation's first request after ready
  first_start  ``make run`` to ready with an empty download cache and no converted models (needs the network)
  hot_path     the ledger's two transactions and the PNG encode, each beside its baseline
  tuning       Triton tuning variants (``--variants``), each served beside the committed tuning and loaded in
               alternation; then the cost of the ensemble's hops (about 2 minutes per variant)
It starts Triton, the gateway and the baseline itself on free ports and stops them. The sections measured
replace those in ``bench.json`` (a tuning run is added to the earlier ones), the others are kept with their
own provenance, and ``bench.md`` and the plots are rewritten from the whole file.
``--quick`` is a smoke run (about a minute) that writes into ``build/bench-quick/``;
``--from-json load_tests/results/bench.json`` rewrites the report and plots without measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from converters.catalog import load_catalog
from converters.triton_config import TUNING
from imaging.geometry import output_size
from load_tests import model_limit
from load_tests.arguments import choices, comma_list, positive_float, positive_int, positive_ints
from load_tests.closed_loop import HttpTarget, RunResult, Target, TritonGrpcTarget, run_closed_loop
from load_tests.cold_start import measure_cold_start, measure_first_start
from load_tests.hot_path import measure_hot_path
from load_tests.operations import OPERATIONS, Operation, check_operations
from load_tests.photos import SIZES, check_sizes, machine_description, photo_jpeg
from load_tests.plots import write_plots
from load_tests.preprocessing import measure_decoding
from load_tests.process_monitor import PhaseUsage, ProcessMonitor
from load_tests.report import write_results
from load_tests.results import (
    GATEWAY,
    NAIVE,
    SECTIONS,
    TRITON,
    BenchResult,
    Decoding,
    Point,
    Provenance,
    Scenario,
    Sequential,
    SequentialRow,
    Throughput,
    Usage,
)
from load_tests.services import MODEL_REPOSITORY, REPO, HttpService, running_gateway, running_naive_app, running_triton
from load_tests.stats import Latency, median_of
from load_tests.tuning import EXPERIMENTS, measure_tuning

RESULTS = Path(__file__).with_name("results")
QUICK_RESULTS = REPO / "build" / "bench-quick"
DEFAULT_SECTIONS = [name for name in SECTIONS if name != "tuning"]
DEFAULT_CONCURRENCY = [1, 2, 4, 8]
# U2-Netp takes ~0.3 s per image on 2 cores: at 8 in flight a request waits 2-3 s and each measured
# window (4 rounds) would last ~11 s; its throughput is flat from 2 in flight on, so 8 adds minutes, not facts.
SLOW_MODELS = {"segmentation_quality": [1, 2, 4]}
LATENCY_ROUNDS = 10  # requests per latency row, at least
LOAD_GENERATOR = "load generator"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load_tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=comma_list(choices(list(SECTIONS))),
                        help=f"comma-separated from {', '.join(SECTIONS)} (default: all but tuning; --quick: "
                             "also not first_start)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer points, shorter, in build/bench-quick/")
    parser.add_argument("--operations", type=comma_list(check_operations),
                        help="default mask_fast,depth,mask_quality (--quick: mask_fast)")
    parser.add_argument("--photo", choices=list(SIZES), default="1MP", help="photo of the main rows")
    parser.add_argument("--extra-photos", type=comma_list(check_sizes),
                        help="more photo sizes for the first operation, at one concurrency (default 0.3MP,3MP,12MP; "
                             "none with --quick)")
    parser.add_argument("--concurrency", type=comma_list(positive_ints),
                        help="default 1,2,4,8 (1,2,4 for U2-Netp operations; --quick: 1,4; tuning: 1,4,8)")
    parser.add_argument("--repeats", type=positive_int, help="runs per point, median taken (default 3; --quick: 1; "
                                                             "tuning: 2)")
    parser.add_argument("--duration", type=positive_float,
                        help="seconds measured per run, at least (default 2; --quick: 1.5; tuning: 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load before each measured window")
    parser.add_argument("--variants", type=comma_list(choices(EXPERIMENTS)), default=EXPERIMENTS,
                        help=f"tuning variants, from {', '.join(EXPERIMENTS)} (default all)")
    parser.add_argument("--variants-only", action="store_true", help="tuning: skip the hop measurements")
    parser.add_argument("--out", type=Path,
                        help="results folder (default load_tests/results; --quick: build/bench-quick)")
    parser.add_argument("--from-json", type=Path, metavar="BENCH_JSON",
                        help="measure nothing: rewrite bench.md and the plots from a saved bench.json")
    args = parser.parse_args(argv)
    quick = args.quick
    wanted = args.sections or [name for name in DEFAULT_SECTIONS if not (quick and name == "first_start")]
    args.sections = [name for name in SECTIONS if name in wanted]
    args.operations = args.operations or check_operations(["mask_fast"] if quick else ["mask_fast", "depth",
                                                                                         "mask_quality"])
    if args.extra_photos is None:
        args.extra_photos = [] if quick else ["0.3MP", "3MP", "12MP"]
    args.concurrency_by_operation = {
        op.name: args.concurrency or ([1, 4] if quick else SLOW_MODELS.get(op.model, DEFAULT_CONCURRENCY))
        for op in args.operations}
    args.out = args.out or (QUICK_RESULTS if quick else RESULTS)
    if args.warmup < 0:
        parser.error(f"--warmup {args.warmup} must be >= 0")
    if args.photo in args.extra_photos:
        parser.error(f"--extra-photos repeats the main photo {args.photo}")
    return args


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)`` in a new interpreter: ONNX Runtime arenas and decoded 12 MP photos of
    (a) and (e) must not inflate the load generator's memory, nor its threads compete with it."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _merge(usages: list[PhaseUsage], requests: int) -> Usage:
    wall = sum(u.wall_s for u in usages)
    names = {name for u in usages for name in u.cpu_s}
    cpu_s = {name: sum(u.cpu_s.get(name, 0.0) for u in usages) for name in names}
    return Usage(
        cores={name: seconds / wall for name, seconds in cpu_s.items()},
        peak_rss_mib={name: max(u.peak_rss_mib.get(name, 0.0) for u in usages) for name in names},
        other_cores=sum(u.other_cores * u.wall_s for u in usages) / wall,
        cpu_ms_per_request={name: seconds * 1e3 / requests for name, seconds in cpu_s.items()} if requests else {},
    )


def _point(target: str, concurrency: int, runs: list[RunResult]) -> Point:
    latencies = [s for run in runs for s in run.latencies_s]
    errors = sum(run.errors for run in runs)
    latency = Latency.from_seconds(latencies) if latencies else Latency(float("nan"), float("nan"), float("nan"))
    return Point(target, concurrency, median_of([run.throughput for run in runs]), [run.throughput for run in runs],
                 latency.p50_ms, latency.p95_ms, latency.p99_ms, len(latencies), errors,
                 next((run.first_error for run in runs if run.first_error), ""))


def peak_rss_under_load(scenarios: list[Scenario]) -> dict[str, float]:
    """Per process, the highest RSS seen while any target was being loaded."""
    peaks: dict[str, float] = {}
    for scenario in scenarios:
        for usage in scenario.usage.values():
            for name, mib in usage.peak_rss_mib.items():
                peaks[name] = max(peaks.get(name, 0.0), mib)
    return peaks


class Bench:
    """The served part of one run: the services, the monitor and the settings every measurement shares."""

    def __init__(self, args: argparse.Namespace, monitor: ProcessMonitor, triton_url: str,
                 gateway: HttpService, naive: HttpService) -> None:
        self.args = args
        self.duration = args.duration or (1.5 if args.quick else 2.0)
        self.monitor = monitor
        self.triton_url = triton_url
        self.gateway = gateway
        self.naive = naive
        self.phases: list[PhaseUsage] = []

    @property
    def other_load_cores(self) -> float:
        """CPU used by processes outside the benchmark while targets were loaded."""
        wall = sum(u.wall_s for u in self.phases)
        return sum(u.other_cores * u.wall_s for u in self.phases) / wall if wall else 0.0

    def targets(self, operation: Operation, photo: str) -> dict[str, Target]:
        data, size = photo_jpeg(photo), output_size(SIZES[photo], 0)
        return {
            TRITON: TritonGrpcTarget(self.triton_url, operation, data, size),
            GATEWAY: HttpTarget(self.gateway.port, operation, data, size, self.gateway.api_key),
            NAIVE: HttpTarget(self.naive.port, operation, data, size),
        }

    def scenario(self, operation: Operation, photo: str, concurrencies: list[int], repeats: int) -> Scenario:
        """Every target at every concurrency, repeats interleaved so slow drifts hit all targets alike."""
        scenario = Scenario(operation.name, photo, repeats)
        targets = self.targets(operation, photo)
        runs: dict[tuple[str, int], list[RunResult]] = {}
        usage: dict[str, list[PhaseUsage]] = {name: [] for name in targets}
        for concurrency in concurrencies:
            for _ in range(repeats):
                for name, target in targets.items():
                    with self.monitor.phase() as phase:
                        run = asyncio.run(run_closed_loop(target, concurrency, self.duration, self.args.warmup))
                    usage[name].append(phase)
                    self.phases.append(phase)
                    runs.setdefault((name, concurrency), []).append(run)
            _log(f"{operation.name} {photo} c={concurrency}: " + ", ".join(
                f"{name} {median_of([r.throughput for r in runs[(name, concurrency)]]):.1f}/s" for name in targets))
        scenario.points = [_point(name, c, found) for (name, c), found in runs.items()]
        completed = {name: sum(r.completed for (target, _), found in runs.items() if target == name for r in found)
                     for name in targets}
        scenario.usage = {name: _merge(phases, completed[name]) for name, phases in usage.items()}
        return scenario

    def throughput(self, measured: Provenance) -> Throughput:
        args, repeats = self.args, self.args.repeats or (1 if self.args.quick else 3)
        settings = {"photo": args.photo, "concurrency": args.concurrency_by_operation, "repeats": repeats,
                    "duration_s": self.duration, "warmup_s": args.warmup, "extra_photos": args.extra_photos,
                    "operations": [op.name for op in args.operations]}
        section = Throughput(measured, settings, asdict(TUNING["cpu"]))
        for operation in args.operations:
            _log(f"b/c/d. {operation.name}, {args.photo}")
            section.scenarios.append(self.scenario(operation, args.photo, args.concurrency_by_operation[operation.name],
                                                   repeats))
        extra_concurrency = [min(4, max(args.concurrency_by_operation[args.operations[0].name]))]
        for photo in args.extra_photos:
            _log(f"b/c/d. {args.operations[0].name}, {photo}")
            section.scenarios.append(self.scenario(args.operations[0], photo, extra_concurrency, 1))
        section.other_load_cores = self.other_load_cores
        section.peak_rss_mib = peak_rss_under_load(section.scenarios)
        return section

    def sequential(self, measured: Provenance, photos: list[str], throughput: Throughput | None) -> Sequential:
        """Every operation at concurrency 1 through the gateway, at least ``LATENCY_ROUNDS`` requests each."""
        section = Sequential(measured)
        for photo in photos:
            for operation in OPERATIONS.values():
                scenario = next((s for s in throughput.scenarios if (s.operation, s.photo) == (operation.name, photo)),
                                None) if throughput else None
                point = scenario.at(GATEWAY, 1) if scenario else None
                if point is None:
                    target = self.targets(operation, photo)[GATEWAY]
                    run = asyncio.run(run_closed_loop(target, 1, self.duration, self.args.warmup, LATENCY_ROUNDS))
                    point = _point(GATEWAY, 1, [run])
                section.rows.append(SequentialRow(operation.name, photo, point.p50_ms, point.p95_ms, point.requests,
                                                  point.errors, point.first_error))
            _log(f"latency {photo}: " + ", ".join(f"{r.operation} {r.p50_ms:.0f} ms" for r in section.rows[-5:]))
        return section


def measure_served(args: argparse.Namespace, measured: Provenance, result: BenchResult) -> None:
    """Sections throughput and latency: Triton, the gateway and the naive baseline on free ports."""
    limits = []
    if "throughput" in args.sections:
        _log("a. models' own limit (ONNX Runtime)")
        sources = load_catalog()
        limits = [point for name in dict.fromkeys(op.model for op in args.operations) for point in in_fresh_process(
            model_limit.measure_model, sources[name], MODEL_REPOSITORY / name / "1" / "model.onnx",
            photo_jpeg(args.photo), 0.3 if args.quick else 0.6)]
    _log("starting Triton, the gateway and the naive baseline")
    with (ProcessMonitor() as monitor, running_triton() as triton, running_gateway(triton.ports.grpc) as gateway,
          running_naive_app() as naive):
        monitor.watch(LOAD_GENERATOR, os.getpid(), with_children=False)
        monitor.watch("triton", triton.process.pid, with_children=True)
        monitor.watch("gateway", gateway.pid, with_children=False)
        monitor.watch("naive", naive.pid, with_children=False)
        bench = Bench(args, monitor, f"127.0.0.1:{triton.ports.grpc}", gateway, naive)
        if "throughput" in args.sections:
            result.throughput = bench.throughput(measured)
            result.throughput.model_limits = limits
        if "latency" in args.sections:
            _log("latency per operation")
            photos = list(dict.fromkeys([args.photo] if args.quick else [args.photo, "12MP"]))
            result.latency = bench.sequential(measured, photos, result.throughput)


def measure(args: argparse.Namespace, measured: Provenance) -> BenchResult:
    result = BenchResult()
    sections = set(args.sections)
    if "decoding" in sections:
        _log("e. preprocessing alone")
        result.decoding = Decoding(measured, in_fresh_process(measure_decoding, list(SIZES), 3 if args.quick else 7))
    if "hot_path" in sections:
        _log("hot path: ledger and PNG encode beside their baselines")
        result.hot_path = in_fresh_process(measure_hot_path, measured, 30 if args.quick else 300)
    if sections & {"throughput", "latency"}:
        measure_served(args, measured, result)
    if "start" in sections:
        _log("start to ready, warm")
        result.start = measure_cold_start(measured, args.operations, args.photo, repeats=1 if args.quick else 3,
                                          steady_requests=5 if args.quick else 8)
    if "first_start" in sections:
        _log("first start: empty download cache, no converted models")
        try:
            result.first_start = measure_first_start(measured)
        except RuntimeError as exc:  # no network, say: the other sections are not lost, bench.json keeps the old one
            _log(f"first start failed, section not measured: {exc}")
    if "tuning" in sections:
        result.tuning = [measure_tuning(measured, args.variants, args.operations, args.photo,
                                        args.concurrency or [1, 4, 8], args.repeats or 2, args.duration or 3.0,
                                        args.variants_only)]
    return result


def load(saved: Path) -> BenchResult:
    return BenchResult.from_json(json.loads(saved.read_text()))


def write(result: BenchResult, out: Path) -> Path:
    md, _ = write_results(result, out)
    write_plots(result, out)
    return md


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    saved = args.from_json or args.out / "bench.json"
    try:
        earlier = load(saved) if args.from_json or saved.exists() else BenchResult()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {saved} is not a bench.json written by this version ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    if args.from_json:
        print(write(earlier, args.out).read_text())
        return 0
    missing = [m for m in load_catalog() if not (MODEL_REPOSITORY / m / "1" / "model.onnx").exists()]
    if missing:
        print(f"error: models not built: {missing}; run `make models` first", file=sys.stderr)
        return 2
    started = time.monotonic()
    command = " ".join(["python -m load_tests.bench", *(sys.argv[1:] if argv is None else argv)])
    measured = Provenance(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), command, machine_description())
    result = measure(args, measured)
    md = write(earlier.merged(result), args.out)
    _log(f"done in {time.monotonic() - started:.0f} s: {md}")
    print(md.read_text())
    points = [p for s in (result.throughput.scenarios if result.throughput else []) for p in s.points]
    errors = sum(p.errors for p in points) + sum(r.errors for r in (result.latency.rows if result.latency else []))
    if errors:
        print(f"error: {errors} requests failed during the benchmark; see the errors in bench.md", file=sys.stderr)
    if "first_start" in args.sections and result.first_start is None:
        print("error: the first start failed (see above); bench.md keeps the earlier one", file=sys.stderr)
    return 1 if errors or ("first_start" in args.sections and result.first_start is None) else 0


if __name__ == "__main__":
    sys.exit(main())
