"""``python -m load_tests.bench`` (``make bench``): the serving overhead against the models' own limit.

In one run on this machine it measures
  a. each ONNX model alone (ONNX Runtime on preprocessed tensors, all cores, best batch);
  b. the Triton ensemble called directly over gRPC (asyncio client, and perf_analyzer);
  c. the same operation through the gateway over HTTP, at the same concurrencies;
  d. a naive baseline: one FastAPI process doing decode + ONNX Runtime + PNG inline;
  e. preprocessing alone: JPEG to model input, with and without reduced-size decoding;
plus cold start (``make run`` to ready, first request after ready), and writes
``bench.md``, ``bench.json`` and PNG plots into ``load_tests/results/``.
It starts Triton, the gateway and the baseline itself on free ports and stops them.
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from converters.catalog import load_catalog
from load_tests.arguments import positive_float, positive_int
from converters.triton_config import TUNING
from imaging.geometry import output_size
from load_tests import model_limit, perf_analyzer
from load_tests.closed_loop import RunResult, Target, run_closed_loop
from load_tests.cold_start import measure_cold_start
from load_tests.operations import Operation, check_operations
from load_tests.photos import SIZES, check_sizes, machine_description, photo_jpeg
from load_tests.plots import write_plots
from load_tests.preprocessing import measure_decoding
from load_tests.process_monitor import PhaseUsage, ProcessMonitor
from load_tests.report import write_results
from load_tests.results import GATEWAY, NAIVE, PERF_ANALYZER, TRITON, BenchResult, Point, Scenario, Usage
from load_tests.services import MODEL_REPOSITORY, REPO, HttpService, running_gateway, running_naive_app, running_triton
from load_tests.stats import Latency, median_of
from load_tests.targets import HttpTarget, TritonGrpcTarget

RESULTS = Path(__file__).with_name("results")
DEFAULT_CONCURRENCY = [1, 2, 4, 8]
# U2-Netp takes ~0.3 s per image on 2 cores: at 8 in flight a request waits 2-3 s and each measured
# window (4 rounds) would last ~11 s; its throughput is flat from 2 in flight on, so 8 adds minutes, not facts.
SLOW_MODELS = {"segmentation_quality": [1, 2, 4]}
QUICK_RESULTS = REPO / "build" / "bench-quick"
LOAD_GENERATOR = "load generator"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _csv(kind):
    def parse(value: str) -> list:
        try:
            return kind([v.strip() for v in value.split(",") if v.strip()])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _concurrencies(values: list[str]) -> list[int]:
    try:
        numbers = sorted({int(v) for v in values})
    except ValueError:
        raise ValueError(f"concurrency must be integers, got {values}") from None
    if not numbers or numbers[0] < 1:
        raise ValueError(f"concurrency values must be >= 1, got {values}")
    return numbers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load_tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer points, shorter, into build/bench-quick/")
    parser.add_argument("--operations", type=_csv(check_operations),
                        help="default mask_fast,depth,mask_quality (--quick: mask_fast)")
    parser.add_argument("--photo", choices=list(SIZES), default="1MP", help="photo of the main rows")
    parser.add_argument("--extra-photos", type=_csv(check_sizes),
                        help="more photo sizes for the first operation, at one concurrency (default 0.3MP,3MP,12MP; "
                             "none with --quick)")
    parser.add_argument("--concurrency", type=_csv(_concurrencies),
                        help="default 1,2,4,8 (1,2,4 for U2-Netp operations; --quick: 1,4)")
    parser.add_argument("--repeats", type=positive_int, help="runs per point, median taken (default 3; --quick: 1)")
    parser.add_argument("--duration", type=positive_float,
                        help="seconds measured per run, at least (default 2; --quick: 1.5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load before each measured window")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the make run cold-start measurement")
    parser.add_argument("--no-perf-analyzer", action="store_true", help="skip the perf_analyzer rows")
    parser.add_argument("--out", type=Path, help="results folder (default load_tests/results; --quick: build/bench-quick)")
    parser.add_argument("--from-json", type=Path, metavar="BENCH_JSON",
                        help="measure nothing: rewrite bench.md and the plots from a saved bench.json")
    args = parser.parse_args(argv)
    quick = args.quick
    args.operations = args.operations or check_operations(["mask_fast"] if quick else ["mask_fast", "depth", "mask_quality"])
    args.extra_photos = args.extra_photos if args.extra_photos is not None else ([] if quick else ["0.3MP", "3MP", "12MP"])
    args.concurrency_by_operation = {
        op.name: args.concurrency or ([1, 4] if quick else SLOW_MODELS.get(op.model, DEFAULT_CONCURRENCY))
        for op in args.operations}
    args.repeats = args.repeats or (1 if quick else 3)
    args.duration = args.duration or (1.5 if quick else 2.0)
    args.out = args.out or (QUICK_RESULTS if quick else RESULTS)
    if args.warmup < 0:
        parser.error(f"--warmup {args.warmup} must be >= 0")
    if args.photo in args.extra_photos:
        parser.error(f"--extra-photos repeats the main photo {args.photo}")
    return args


def in_fresh_process(function, *args):
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
    """One run: the services, the monitor and the settings every measurement shares."""

    def __init__(self, args: argparse.Namespace, monitor: ProcessMonitor, triton_url: str,
                 gateway: HttpService, naive: HttpService) -> None:
        self.args = args
        self.monitor = monitor
        self.triton_url = triton_url
        self.gateway = gateway
        self.naive = naive
        self.phases: list[PhaseUsage] = []

    @property
    def other_load_cores(self) -> float:
        """CPU used by processes outside the benchmark while targets were loaded (perf_analyzer runs excluded)."""
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
                        run = asyncio.run(run_closed_loop(target, concurrency, self.args.duration, self.args.warmup))
                    usage[name].append(phase)
                    self.phases.append(phase)
                    runs.setdefault((name, concurrency), []).append(run)
            _log(f"{operation.name} {photo} c={concurrency}: " + ", ".join(
                f"{name} {median_of([r.throughput for r in runs[(name, concurrency)]]):.1f}/s" for name in targets))
        scenario.points = [_point(name, c, found) for (name, c), found in runs.items()]
        completed = {name: sum(r.completed for (target, _), found in runs.items() if target == name for r in found)
                     for name in targets}
        scenario.usage = {name: _merge(phases, completed[name]) for name, phases in usage.items()}
        if not self.args.no_perf_analyzer:
            scenario.points += self.perf_analyzer_points(operation, photo, scenario)
        return scenario

    def perf_analyzer_points(self, operation: Operation, photo: str, scenario: Scenario) -> list[Point]:
        """perf_analyzer at the concurrencies of the asyncio client: 3 windows of about 2/3 of a run each,
        and at least 4 rounds of requests (their p50 as the asyncio client measured it)."""
        data = perf_analyzer.input_data(operation.ensemble, photo_jpeg(photo), load_catalog(), MODEL_REPOSITORY)
        points = []
        for triton_point in scenario.of(TRITON):
            concurrency = triton_point.concurrency
            window_ms = int(max(1000, self.args.duration * 600, 4 * triton_point.p50_ms))
            r = perf_analyzer.run_perf_analyzer(self.triton_url, operation.ensemble, data, concurrency, window_ms)
            points.append(Point(PERF_ANALYZER, concurrency, r.throughput, [r.throughput], r.p50_ms, r.p95_ms, r.p99_ms,
                                requests=0))
        _log(f"{operation.name} {photo} perf_analyzer: " + ", ".join(f"c={p.concurrency} {p.throughput:.1f}/s" for p in points))
        return points


def run_bench(args: argparse.Namespace, command: str) -> BenchResult:
    result = BenchResult(
        machine=machine_description(), started_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command, tuning=asdict(TUNING["cpu"]),
        settings={"photo": args.photo, "concurrency": args.concurrency_by_operation, "repeats": args.repeats,
                  "duration_s": args.duration, "warmup_s": args.warmup, "extra_photos": args.extra_photos,
                  "operations": [op.name for op in args.operations]},
    )
    if not args.no_perf_analyzer:
        perf_analyzer.install_perf_analyzer()
    with ProcessMonitor() as monitor:
        monitor.watch(LOAD_GENERATOR, os.getpid(), with_children=False)
        _log("e. preprocessing alone")
        result.decoding = in_fresh_process(measure_decoding, list(SIZES), 3 if args.quick else 7)
        _log("a. models' own limit (ONNX Runtime)")
        sources = load_catalog()
        for name in dict.fromkeys(op.model for op in args.operations):
            result.model_limits += in_fresh_process(
                model_limit.measure_model, sources[name], MODEL_REPOSITORY / name / "1" / "model.onnx",
                photo_jpeg(args.photo), 0.3 if args.quick else 0.6)
        _log("starting Triton, the gateway and the naive baseline")
        with running_triton() as triton, running_gateway(triton.ports.grpc) as gateway, running_naive_app() as naive:
            monitor.watch("triton", triton.process.pid, with_children=True)
            monitor.watch("gateway", gateway.pid, with_children=False)
            monitor.watch("naive", naive.pid, with_children=False)
            bench = Bench(args, monitor, f"127.0.0.1:{triton.ports.grpc}", gateway, naive)
            for operation in args.operations:
                _log(f"b/c/d. {operation.name}, {args.photo}")
                result.scenarios.append(bench.scenario(
                    operation, args.photo, args.concurrency_by_operation[operation.name], args.repeats))
            extra_concurrency = [min(4, max(args.concurrency_by_operation[args.operations[0].name]))]
            for photo in args.extra_photos:
                _log(f"b/c/d. {args.operations[0].name}, {photo}")
                result.scenarios.append(bench.scenario(args.operations[0], photo, extra_concurrency, 1))
            for name in ("triton", "gateway", "naive"):
                monitor.unwatch(name)
        result.other_load_cores = bench.other_load_cores
        result.peak_rss_mib = peak_rss_under_load(result.scenarios)
    if not args.no_cold_start:
        _log("cold start")
        result.cold_start = measure_cold_start(
            args.operations, args.photo, repeats=1 if args.quick else 3, steady_requests=5 if args.quick else 8)
    return result


def rewrite_reports(saved: Path, out: Path) -> int:
    try:
        result = BenchResult.from_json(json.loads(saved.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {saved} is not a bench.json written by this version ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    md, _ = write_results(result, out)
    write_plots(result, out)
    print(md.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return rewrite_reports(args.from_json, args.out)
    missing = [m for m in load_catalog() if not (MODEL_REPOSITORY / m / "1" / "model.onnx").exists()]
    if missing:
        print(f"error: models not built: {missing}; run `make models` first", file=sys.stderr)
        return 2
    started = time.monotonic()
    command = " ".join(["python -m load_tests.bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        result = run_bench(args, command)
    except perf_analyzer.PerfAnalyzerError as exc:
        print(f"error: {exc}\n(--no-perf-analyzer skips it)", file=sys.stderr)
        return 1
    md, js = write_results(result, args.out)
    plots = write_plots(result, args.out)
    _log(f"done in {time.monotonic() - started:.0f} s: {md}, {js}, {len(plots)} plots")
    print(md.read_text())
    errors = sum(p.errors for s in result.scenarios for p in s.points)
    if errors:
        print(f"error: {errors} requests failed during the benchmark; see the errors column", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
