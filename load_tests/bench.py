"""``python -m load_tests.bench`` (``make bench``): the one benchmark, into the one results document.

Sections (``--sections``; the default is every one but tuning):
  throughput   one operation per model an ensemble runs, by its first fixed variant (fastest first, also at the
               other photo sizes; auto's choice between mattes with --operations mask_auto): a. the ONNX model alone,
               b. Triton direct over gRPC, c. the gateway over HTTP, d. a naive one-process FastAPI baseline;
               with CPU and peak memory per process, and plots
  latency      every operation, one request at a time through the gateway, 1 MP and 12 MP
  edits        each edit at 1 MP and 12 MP beside the plain cutout, and the result's bytes per output format
  peer         the gateway beside rembg's own server (.venv-peer), U2-Netp mask and cutout, 1 MP and 12 MP, with
               the ratios against issue 18's targets
  decoding     e. preprocessing alone: JPEG to model input, with and without reduced-size decoding
  start        ``make run`` to ready with everything built, and each operation's first request after ready
  first_start  ``make run`` to ready with an empty download cache and no converted models (needs the network)
  hot_path     the ledger's two transactions and the PNG encode, each beside its baseline
  tuning       Triton tuning variants (``--variants``), each beside the committed tuning (~2 minutes each)
The services run on free ports and are always stopped. The sections measured replace those in ``bench.json``
(a tuning run is added), the others keep their provenance, and ``bench.md`` is rewritten from the whole file.
``--quick`` is a smoke run into ``build/bench-quick/``; ``--from-json FILE`` rewrites bench.md, measuring nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from contract.product import PRODUCT
from converters.catalog import load_catalog
from converters.triton_config import TUNING, fed_by_decode
from imaging.geometry import output_size
from load_tests import edits, offline, peer, peer_section, report, services, tuning
from load_tests.closed_loop import HttpTarget, RunResult, TritonGrpcTarget, percentiles_ms, run_closed_loop
from load_tests.operations import OPERATIONS, Operation, check_operations
from load_tests.services import MODEL_REPOSITORY, REPO, ProcessMonitor, start_command, started_stack
from load_tests.traffic_mix import SIZES, check_sizes, photo_jpeg

RESULTS = Path(__file__).with_name("results")
QUICK_RESULTS = REPO / "build" / "bench-quick"
SECTIONS = report.SECTIONS
TRITON, GATEWAY, NAIVE = "b. Triton gRPC (asyncio client)", "c. gateway HTTP", "d. naive FastAPI"
PROCESSES = ("triton", "gateway", "naive", "load generator")
DEFAULT_CONCURRENCY = [1, 2, 4, 8]
# A model under this many images/s alone (U2-Netp: ~4 on 2 cores) is loaded up to 4 in flight, not 8: at 8 a
# request waits 2-3 s and each measured window (4 rounds) lasts ~11 s, while its throughput is flat from 2 on.
SLOW_IMAGES_PER_S = 20
LATENCY_ROUNDS = 10  # requests per latency row, at least


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _chosen(names: list[str], known: list[str] | tuple[str, ...]) -> list[str]:
    if not names or set(names) - set(known):
        raise ValueError(f"unknown {sorted(set(names) - set(known)) or names}; choose from {', '.join(known)}")
    return names


def default_operations() -> list[Operation]:
    """One operation per model an ensemble runs (the served depth and matte models, in ``PRODUCT.models()`` order):
    the first of a fixed variant that uses it, so that its throughput is that model's, not a choice between two
    mattes (``auto``; measured with ``--operations mask_auto``)."""
    catalog, fixed = load_catalog(), [op for op in OPERATIONS.values() if not op.by_faces]
    models = [name for name in PRODUCT.models() if fed_by_decode(catalog[name])]
    return [found for name in models if (found := next((op for op in fixed if op.model == name), None))]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load_tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--sections", type=_split, help=f"from {','.join(SECTIONS)} (default: all but tuning [and first_start])")
    add("--quick", action="store_true", help="smoke run: fewer points, shorter, in build/bench-quick/")
    add("--operations", type=_split, help="default: one per model, fixed variants (--quick: the first)")
    add("--photo", choices=list(SIZES), default="1MP", help="photo of the main rows")
    add("--extra-photos", type=_split, help="sizes for the first operation too (0.3MP,3MP,12MP; --quick: none)")
    add("--concurrency", type=_split, help="default 1,2,4,8 (1,2,4 for slow models; --quick: 1,4; tuning: 1,4,8)")
    add("--repeats", type=int, help="runs per point, median taken (default 3; --quick: 1; tuning: 2)")
    add("--duration", type=float, help="seconds measured per run, at least (default 2; --quick: 1.5; tuning: 3)")
    add("--warmup", type=float, default=0.5, help="seconds of load before each measured window")
    add("--variants", type=_split, default=tuning.EXPERIMENTS, help=f"from {','.join(tuning.EXPERIMENTS)} (all)")
    add("--out", type=Path, help="results folder (default load_tests/results; --quick: build/bench-quick)")
    add("--from-json", type=Path, metavar="BENCH_JSON", help="measure nothing: rewrite bench.md from a bench.json")
    args = parser.parse_args(argv)
    try:
        wanted = _chosen(args.sections, SECTIONS) if args.sections is not None else [
            s for s in SECTIONS if s != "tuning" and not (args.quick and s == "first_start")]
        args.sections, args.variants = [s for s in SECTIONS if s in wanted], _chosen(args.variants, tuning.EXPERIMENTS)
        args.operations_given = args.operations is not None
        args.operations = check_operations(args.operations) if args.operations_given else \
            default_operations()[:1 if args.quick else None]
        args.extra_photos = check_sizes(args.extra_photos) if args.extra_photos is not None else \
            [] if args.quick else ["0.3MP", "3MP", "12MP"]
        if args.concurrency is not None and not all(value.isdigit() for value in args.concurrency):
            raise ValueError(f"--concurrency {','.join(args.concurrency)}: give integers, e.g. 1,2,4,8")
        args.concurrency = args.concurrency and sorted({int(value) for value in args.concurrency})
        if args.concurrency is not None and (not args.concurrency or args.concurrency[0] < 1):
            raise ValueError("--concurrency: values must be >= 1")
        if any(value is not None and value <= 0 for value in (args.repeats, args.duration)) or args.warmup < 0:
            raise ValueError("--repeats and --duration must be positive, --warmup at least 0")
        if args.photo in args.extra_photos:
            raise ValueError(f"--extra-photos repeats the main photo {args.photo}")
    except ValueError as exc:
        parser.error(str(exc))
    args.out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    return args


def in_fresh_process(function, *args):  # noqa: ANN001, ANN002, ANN201
    """``function(*args)`` in a new interpreter: ONNX Runtime arenas and 12 MP photos stay out of the load generator."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ({value:.0%})"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator and denominator > 0 else None


def best_limits(limit_rows: list[dict]) -> dict[str, dict]:
    """Per model, the layout and batch with the most images per second: the model's own limit."""
    found: dict[str, dict] = {}
    for row in limit_rows:
        for key in (k for k in row if k[0] == "b" and k[1:].isdigit()):
            if row[key] > found.get(row["model"], {}).get("images_per_s", -1.0):
                found[row["model"]] = {"model": row["model"], "images_per_s": row[key], "layout": row["layout"],
                                       "batch": int(key[1:]), "ms": 1e3 / row[key]}
    return found


def _scenario_parts(scenario: dict, limit: dict | None) -> list[dict]:
    points, op = scenario["points"], scenario["operation"]
    at_1 = {p["target"]: p for p in points if p["concurrency"] == 1}
    # at saturation: each target's point with the highest throughput (the first of equals), its capacity here
    gateway, triton, naive = (max((p for p in points if p["target"] == t), key=lambda p: p["throughput"], default=None)
                              for t in (GATEWAY, TRITON, NAIVE))
    rates = [(s or {}).get("throughput") for s in (gateway, triton, naive)]
    overhead = at_1[GATEWAY]["p50_ms"] - at_1[TRITON]["p50_ms"] if {GATEWAY, TRITON} <= at_1.keys() else None
    cd = _ratio(rates[0], rates[2])
    rows = [{"label": f"a. model's own limit ({limit['model']})", "throughput": limit["images_per_s"],
             "batch": limit["batch"]}] if limit else []
    rows += [{"label": t, **{k: s[k] for k in ("throughput", "concurrency", "p95_ms")}}
             for t, s in ((TRITON, triton), (GATEWAY, gateway), (NAIVE, naive)) if s]
    after = [f"Ratios at saturation: c/a = {_share(_ratio(rates[0], limit and limit['images_per_s']))}, "
             f"c/b = {_share(_ratio(rates[0], rates[1]))}, c/d = {'n/a' if cd is None else f'{cd:.2f}x'}. "
             "Gateway p50 overhead over Triton direct at concurrency 1: "
             f"{'n/a' if overhead is None else f'{overhead:.1f} ms'}."]
    if len({p["concurrency"] for p in points}) > 1:
        after.append(f"![{op}](bench-{op}-{scenario['photo']}.png)")
    return [{"heading": f"## {op}, {scenario['photo']} JPEG: b. Triton direct, c. gateway, d. naive",
             "text": [f"Closed loop, requests in flight = concurrency; req/s is the median of {scenario['repeats']} "
                      "run(s), percentiles pool all their requests."],
             "columns": [["concurrency", "{concurrency}"], ["target", "{target}"], ["req/s", "{throughput:.1f}"],
                         ["p50 ms", "{p50_ms:.1f}"], ["p95 ms", "{p95_ms:.1f}"], ["p99 ms", "{p99_ms:.1f}"],
                         ["requests", "{requests}"], ["errors", ["{errors} ({first_error})", "{errors}"]]],
             "rows": sorted(points, key=lambda p: p["concurrency"])},
            {"columns": [["at saturation", "{label}"], ["req/s", "{throughput:.1f}"],
                         ["concurrency", ["{concurrency}", "batch {batch}"]], ["p95 ms", ["{p95_ms:.0f}", ""]]],
             "rows": rows, "after": after}]


def throughput_section(measured: dict, settings: dict, tuned: dict, limit_rows: list[dict], scenarios: list[dict],
                       other_load_cores: float) -> report.Section:
    """a.-d. from what was measured: the models' limits, each scenario's points and the CPU and memory used."""
    limits = best_limits(limit_rows)
    batches = sorted({int(k[1:]) for row in limit_rows for k in row if k[0] == "b" and k[1:].isdigit()})
    parts = [{"heading": "## a.-d. Throughput: how it was measured",
              "text": [f"Other load on the machine while the targets were loaded: {other_load_cores:.2f} cores on "
                       "average (CPU used by processes outside the benchmark; near 0 means it was otherwise idle).",
                       f"Settings: photo {settings['photo']} JPEG; concurrency {settings['concurrency']}; "
                       f"{settings['repeats']} run(s) per point, each a warm-up (>= {settings['warmup_s']} s and one "
                       f"answer per worker) then a window of {settings['duration_s']} s or 4 rounds of requests, "
                       f"whichever is longer; Triton CPU tuning `{tuned}`."]},
             {"heading": "## a. The models' own limit: ONNX Runtime on preprocessed tensors",
              "text": ["Images per second; no decoding, no serving, no PNG. The best cell of each model is its limit."],
              "columns": [["model", "{model}"], ["layout", "{layout}"], *([f"batch {b}", f"{{b{b}:.1f}}"]
                                                                           for b in batches)], "rows": limit_rows},
             {"columns": [["model", "{model}"], ["limit (images/s)", "{images_per_s:.1f}"],
                          ["at", "{layout}, batch {batch}"], ["ms per image", "{ms:.1f}"]],
              "rows": list(limits.values())}]
    for scenario in scenarios:
        parts += _scenario_parts(scenario, limits.get(scenario["model"]))
    usage = [{"scenario": f"{s['operation']} {s['photo']}", "target": target, **use,
              "ms": {p: ms for p, ms in use["cpu_ms_per_request"].items() if use["cores"].get(p, 0) >= 0.01}}
             for s in scenarios for target, use in s["usage"].items()]
    peaks = {p: max(u["peak_rss_mib"].get(p, 0.0) for u in usage) for p in PROCESSES
             if any(p in u["peak_rss_mib"] for u in usage)}
    parts += [{"heading": "## CPU and memory per process",
               "text": ["Average CPU in cores (1.0 = one core busy) while each target was loaded, over all its runs, "
                        "and in brackets the CPU ms that process spent per request; Triton counts its python-backend "
                        "stub processes. \"other\" is CPU used by processes outside the benchmark."],
               "columns": [["scenario", "{scenario}"], ["loaded target", "{target}"],
                           *([p, [f"{{cores[{p}]:.2f}} ({{ms[{p}]:.1f}} ms)", f"{{cores[{p}]:.2f}}"]]
                             for p in PROCESSES), ["other", "{other_cores:.2f}"]], "rows": usage},
              {"text": ["Peak RSS while the targets were loaded (MiB; a process tree's RSS is summed, so pages shared "
                        "by Triton's stub processes are counted once per process):"],
               "columns": [["process", "{process}"], ["peak RSS MiB", "{mib:.0f}"]],
               "rows": [{"process": p, "mib": mib} for p, mib in peaks.items()]}]
    return report.section("throughput", "a.-d. Throughput", measured, parts, settings=settings, tuning=tuned,
                          other_load_cores=other_load_cores)


def start_section(measured: dict, command: str, ready_s: list[float], first_ms: dict, steady_ms: dict) -> dict:
    rows = [{"operation": op, "first_ms": median(first_ms[op]), "steady_ms": median(steady_ms[op]),
             "factor": median(first_ms[op]) / median(steady_ms[op])}
            for op in first_ms if first_ms[op] and steady_ms.get(op)]
    return report.section("start", "Start to ready", measured, [{
        "heading": "## Start to ready",
        "text": [f"`{command}` with the virtualenv and models already built, to the gateway's `/readyz` = 200: "
                 f"median {median(ready_s):.1f} s (runs: {', '.join(f'{s:.1f}' for s in ready_s)})."],
        "columns": [["operation", "{operation}"], ["first request after ready, ms (median)", "{first_ms:.0f}"],
                    ["steady-state p50 ms", "{steady_ms:.0f}"], ["first / steady", "{factor:.2f}"]],
        "rows": rows}], command=command, ready_s=ready_s, first_ms=first_ms, steady_ms=steady_ms)


def first_start_section(measured: dict, command: str, ready_s: list[float]) -> dict:
    return report.section("first_start", "First start", measured, [{"text": [
        f"First start: `{command}` with an empty download cache and no converted models (download, verify, convert, "
        f"then start): {median(ready_s):.1f} s to ready."]}], command=command, ready_s=ready_s)


def usage(phases: list, requests: int) -> dict:
    """Average cores and peak RSS per watched process over the phases, and its CPU ms per successful request."""
    wall = sum(p.wall_s for p in phases)
    cpu_s = {name: sum(p.cpu_s.get(name, 0.0) for p in phases) for name in phases[0].cpu_s}
    return {"cores": {name: s / wall for name, s in cpu_s.items()},
            "peak_rss_mib": {name: max(p.peak_rss_mib.get(name, 0.0) for p in phases) for name in cpu_s},
            "other_cores": sum(max(0.0, p.machine_busy_s - sum(p.cpu_s.values())) for p in phases) / wall,
            "cpu_ms_per_request": {name: s * 1e3 / requests for name, s in cpu_s.items()} if requests else {}}


class Served:
    """Triton, the gateway and the naive baseline on free ports, watched, and what is measured against them."""

    def __init__(self, args: argparse.Namespace, monitor: ProcessMonitor, triton_url: str, gateway, naive) -> None:  # noqa: ANN001
        self.args, self.monitor, self.triton_url, self.gateway, self.naive = args, monitor, triton_url, gateway, naive
        self.duration, self.errors, self.reusable = args.duration or (1.5 if args.quick else 2.0), 0, {}

    def targets(self, operation: Operation, photo: str) -> dict:
        data, size = photo_jpeg(photo), output_size(SIZES[photo], 0)
        return {TRITON: TritonGrpcTarget(self.triton_url, operation, data, size),
                GATEWAY: HttpTarget(self.gateway.port, operation, data, size, self.gateway.api_key),
                NAIVE: HttpTarget(self.naive.port, operation, data, size)}

    def point(self, target: str, concurrency: int, runs: list[RunResult]) -> dict:
        """One target at one concurrency: median throughput of the repeats, percentiles of all their requests."""
        latencies = [s for run in runs for s in run.latencies_s]
        self.errors += sum(r.errors for r in runs)
        return {"target": target, "concurrency": concurrency, "throughput": median(r.throughput for r in runs),
                "throughputs": [r.throughput for r in runs], **dict(zip(("p50_ms", "p95_ms", "p99_ms"),
                                                                        percentiles_ms(latencies), strict=True)),
                "requests": len(latencies), "errors": sum(r.errors for r in runs),
                "first_error": next((r.first_error for r in runs if r.first_error), "")}

    def scenario(self, operation: Operation, photo: str, concurrencies: list[int], repeats: int,
                 targets: dict | None = None) -> dict:
        """Every target (default ``targets()``) at every concurrency, repeats interleaved so slow drifts hit all
        targets alike."""
        targets, runs = targets or self.targets(operation, photo), {}
        phases: dict[str, list] = {name: [] for name in targets}
        for concurrency in concurrencies:
            for _ in range(repeats):
                for name, target in targets.items():
                    with self.monitor.phase() as phase:
                        run = asyncio.run(run_closed_loop(target, concurrency, self.duration, self.args.warmup))
                    phases[name].append(phase)
                    runs.setdefault((name, concurrency), []).append(run)
            _log(f"{operation.name} {photo} c={concurrency}: " + ", ".join(
                f"{name} {median(r.throughput for r in runs[name, concurrency]):.1f}/s" for name in targets))
        completed = {name: sum(r.completed for (t, _), found in runs.items() if t == name for r in found)
                     for name in targets}
        return {"operation": operation.name, "model": operation.model, "photo": photo, "repeats": repeats,
                "points": [self.point(name, c, found) for (name, c), found in runs.items()],
                "usage": {name: usage(phases[name], completed[name]) for name in targets}}

    def throughput(self, measured: dict, limit_rows: list[dict]) -> report.Section:
        args, repeats = self.args, self.args.repeats or (1 if self.args.quick else 3)
        limits = best_limits(limit_rows)
        operations = args.operations
        if not args.operations_given:  # fastest model first: it is also measured at the other photo sizes
            operations = sorted(operations, key=lambda op: -limits.get(op.model, {}).get("images_per_s", 0.0))
        concurrency = {op.name: args.concurrency or ([1, 4] if args.quick else [
            c for c in DEFAULT_CONCURRENCY if c <= 4 or limits.get(op.model, {}).get("images_per_s", 1e9) >=
            SLOW_IMAGES_PER_S]) for op in operations}
        settings = {"photo": args.photo, "concurrency": concurrency, "repeats": repeats, "duration_s": self.duration,
                    "warmup_s": args.warmup, "extra_photos": args.extra_photos,
                    "operations": [op.name for op in operations]}
        scenarios = []
        for operation in operations:
            _log(f"b/c/d. {operation.name}, {args.photo}")
            scenarios.append(self.scenario(operation, args.photo, concurrency[operation.name], repeats))
        for photo in args.extra_photos:
            _log(f"b/c/d. {operations[0].name}, {photo}")
            scenarios.append(self.scenario(operations[0], photo, [min(4, max(concurrency[operations[0].name]))], 1))
        for scenario in scenarios:
            plot_scenario(args.out, scenario, limits.get(scenario["model"]))
        self.reusable = {(s["operation"], s["photo"]): p for s in scenarios for p in s["points"]
                         if (p["target"], p["concurrency"]) == (GATEWAY, 1)}
        return throughput_section(measured, settings, asdict(TUNING["cpu"]), limit_rows, scenarios,
                                  usage(self.monitor.phases, 0)["other_cores"])

    def peer(self, measured: dict, rembg: peer.RunningPeer) -> report.Section:
        """The gateway and rembg's server on the same photos, one scenario per operation, photo and concurrency."""
        args, gateway, scenarios = self.args, self.gateway, []
        repeats, concurrency = args.repeats or (1 if args.quick else 3), args.concurrency or [1, 4]
        for photo in peer_section.PHOTOS:
            data, size = photo_jpeg(photo), output_size(SIZES[photo], 0)
            for operation in check_operations(list(peer_section.OPERATIONS)):
                targets = {peer_section.OURS: HttpTarget(gateway.port, operation, data, size, gateway.api_key),
                           peer_section.PEER: peer.PeerTarget(rembg.port, operation, data, size)}
                scenarios += [self.scenario(operation, photo, [c], repeats, targets) for c in concurrency]
        settings = {"photos": list(peer_section.PHOTOS), "concurrency": concurrency, "repeats": repeats,
                    "duration_s": self.duration, "warmup_s": args.warmup, "threads": peer.THREADS,
                    "tuning": asdict(TUNING["cpu"]), "our_layout": asdict(TUNING["cpu"].layout(peer.MODEL)),
                    "peer_versions": peer.versions(),
                    "cpu_flags": peer_section.cpu_flags()}
        return peer_section.section(measured, settings, scenarios)

    def latency(self, measured: dict, photos: list[str]) -> report.Section:
        """Every operation at concurrency 1 through the gateway, at least ``LATENCY_ROUNDS`` requests each."""
        rows = []
        for photo in photos:
            for operation in OPERATIONS.values():
                found = self.reusable.get((operation.name, photo)) or self.point(GATEWAY, 1, [asyncio.run(
                    run_closed_loop(self.targets(operation, photo)[GATEWAY], 1, self.duration, self.args.warmup,
                                    LATENCY_ROUNDS))])
                rows.append({"operation": operation.name, "endpoint": operation.http_path, "photo": photo,
                             **{k: found[k] for k in ("p50_ms", "p95_ms", "requests", "errors", "first_error")}})
            _log(f"latency {photo}: " + ", ".join(f"{r['operation']} {r['p50_ms']:.0f} ms" for r in rows[-5:]))
        return report.section("latency", "Latency per operation", measured, [{
            "heading": "## Latency per operation: one request at a time, through the gateway",
            "text": ["Sequential requests (concurrency 1) after a warm-up; the response of each is checked."],
            "columns": [["endpoint", "`{endpoint}`"], ["photo", "{photo} JPEG"], ["p50 ms", "{p50_ms:.0f}"],
                        ["p95 ms", "{p95_ms:.0f}"], ["requests", ["{requests}, {errors} failed ({first_error})",
                                                                  "{requests}"]]], "rows": rows}])


def plot_scenario(out: Path, scenario: dict, limit: dict | None, off_scale: float = 3.0) -> None:
    """Throughput and p95 against concurrency per target; the model's own limit as a line when not off scale."""
    points = sorted(scenario["points"], key=lambda p: p["concurrency"])
    concurrencies = sorted({p["concurrency"] for p in points})
    if len(concurrencies) < 2:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, target in enumerate(dict.fromkeys(p["target"] for p in points)):
        x = [p["concurrency"] for p in points if p["target"] == target]
        for axis, key in ((left, "throughput"), (right, "p95_ms")):
            axis.plot(x, [p[key] for p in points if p["target"] == target], "osx^"[index % 4] + "-", label=target)
    title = "throughput"
    if limit and limit["images_per_s"] <= off_scale * max(p["throughput"] for p in points):
        left.axhline(limit["images_per_s"], color="grey", linestyle="-.", label=f"a. {limit['model']} alone")
    elif limit:  # a line 10x above the data would flatten it: say the number instead
        title += f" (a. {limit['model']} alone: {limit['images_per_s']:.0f}/s, off scale)"
    for axis, name, unit in ((left, title, "requests / s"), (right, "p95 latency", "ms")):
        axis.set(title=name, xlabel="concurrency (requests in flight)", ylabel=unit, ylim=(0, None))
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle(f"{scenario['operation']}, {scenario['photo']} JPEG")
    figure.tight_layout()
    figure.savefig(out / f"bench-{scenario['operation']}-{scenario['photo']}.png", dpi=110)
    plt.close(figure)


async def _timed_requests(port: int, key: str, operation: Operation, photo: str, count: int) -> list[float]:
    """Latencies (ms) of ``count`` sequential requests on one connection, each response checked."""
    target, latencies = HttpTarget(port, operation, photo_jpeg(photo), output_size(SIZES[photo], 0), key), []
    await target.open(1)
    try:
        for _ in range(count):
            started = time.perf_counter()
            await target.send(0)
            latencies.append((time.perf_counter() - started) * 1e3)
    finally:
        await target.close()
    return latencies


def measure_start(measured: dict, operations: list[Operation], photo: str, repeats: int, steady: int) -> dict:
    """``make run`` to ready with everything built, then each operation's first request and steady ones."""
    command, ready_s, first_ms, steady_ms = start_command(), [], {}, {}
    for _ in range(repeats):
        with started_stack(command) as (port, key, ready):
            ready_s.append(ready)
            for found, count in ((first_ms, 1), (steady_ms, steady)):  # each first call before any other load
                for op in operations:
                    found.setdefault(op.name, []).extend(asyncio.run(_timed_requests(port, key, op, photo, count)))
    return start_section(measured, _shown(command), ready_s, first_ms, steady_ms)


def _shown(command: list[str]) -> str:
    return " ".join(command) if command[0] == "make" else "python -m stack"


def measure_served(args: argparse.Namespace, measured: dict) -> tuple[list[dict], int]:
    """Sections throughput (the models alone first, each in a fresh process), latency, edits and peer, and the failed
    requests."""
    limit_rows, catalog, sections = [], load_catalog(), []
    if "throughput" in args.sections:
        _log("a. models' own limit (ONNX Runtime)")
        for model in dict.fromkeys(op.model for op in args.operations):
            limit_rows += in_fresh_process(offline.model_limit, catalog[model], MODEL_REPOSITORY / model / "1" /
                                           "model.onnx", photo_jpeg(args.photo), 0.3 if args.quick else 0.6)
    _log("starting Triton, the gateway and the naive baseline")
    with (ProcessMonitor() as monitor, services.running_triton() as triton,
          services.running_gateway(triton.ports.grpc) as gateway, services.running_naive_app() as naive):
        for name, pid, children in (("load generator", os.getpid(), False), ("triton", triton.process.pid, True),
                                    ("gateway", gateway.pid, False), ("naive", naive.pid, False)):
            monitor.watch(name, pid, children)
        served = Served(args, monitor, f"127.0.0.1:{triton.ports.grpc}", gateway, naive)
        if "throughput" in args.sections:
            sections.append(served.throughput(measured, limit_rows))
        if "latency" in args.sections:
            _log("latency per operation")
            photos = [args.photo] if args.quick or args.photo == "12MP" else [args.photo, "12MP"]
            sections.append(served.latency(measured, photos))
        if "edits" in args.sections:
            _log("edits beside the cutout, and output formats")
            sections.append(edits.measure(measured, gateway.port, gateway.api_key, 3 if args.quick else 7))
        if "peer" in args.sections:
            _log("peer: the gateway beside rembg's own server")
            with peer.running_peer() as rembg:
                monitor.watch("rembg", rembg.pid, False)
                sections.append(served.peer(measured, rembg))
    return sections, served.errors


def measure_first_start(measured: dict) -> list[dict]:
    """Start to ready with an empty download cache and no converted models; nothing if it fails (no network, say)."""
    command = start_command()
    try:
        with tempfile.TemporaryDirectory(prefix="imageserve-empty-cache-") as cache, services.models_set_aside(), \
                started_stack(command, {"IMAGESERVE_CACHE": cache}) as (_, _, ready_s):
            return [first_start_section(measured, _shown(command), [ready_s])]
    except RuntimeError as exc:  # the other sections are not lost, and bench.json keeps the earlier one
        _log(f"first start failed, section not measured: {exc}")
        return []


def measure(args: argparse.Namespace, measured: dict, earlier: list[dict]) -> tuple[list[dict], int]:
    """The sections asked for, and the number of failed requests and starts."""
    sections, errors, wanted = [], 0, set(args.sections)
    args.out.mkdir(parents=True, exist_ok=True)
    if "decoding" in wanted:
        _log("e. preprocessing alone")
        sections.append(in_fresh_process(offline.decoding, measured, list(SIZES), 3 if args.quick else 7))
    if "hot_path" in wanted:
        _log("hot path: ledger and PNG encode beside their baselines")
        sections.append(in_fresh_process(offline.hot_path, measured, 30 if args.quick else 300))
    if wanted & {"throughput", "latency", "edits", "peer"}:
        served, errors = measure_served(args, measured)
        sections += served
    if "start" in wanted:
        _log("start to ready, warm")
        sections.append(measure_start(measured, args.operations, args.photo, 1 if args.quick else 3,
                                      5 if args.quick else 8))
    if "first_start" in wanted:
        _log("first start: empty download cache, no converted models")
        found = measure_first_start(measured)
        sections, errors = sections + found, errors + (not found)
    if "tuning" in wanted:
        sections.append(tuning.measure(measured, 1 + sum(s["key"] == "tuning" for s in earlier), args.variants,
                                       args.operations, args.photo, args.concurrency or [1, 4, 8], args.repeats or 2,
                                       args.duration or 3.0))
    return sections, errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    saved = args.from_json or args.out / "bench.json"
    try:
        earlier = report.load(saved) if args.from_json or saved.exists() else []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {saved} is not a bench.json written by this version ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    if args.from_json:
        print(report.write(earlier, args.out).read_text())
        return 0
    missing = [m for m in PRODUCT.models() if not (MODEL_REPOSITORY / m / "1" / "model.onnx").exists()]
    if missing:
        print(f"error: models not built: {missing}; run `make models` first", file=sys.stderr)
        return 2
    started = time.monotonic()
    command = " ".join(["python -m load_tests.bench", *(sys.argv[1:] if argv is None else argv)])
    measured = {"at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "command": command,
                "machine": report.machine_description(), "note": ""}
    sections, errors = measure(args, measured, earlier)
    md = report.write(report.merged(earlier, sections), args.out)
    _log(f"done in {time.monotonic() - started:.0f} s: {md}")
    print(md.read_text())
    if errors:
        print(f"error: {errors} requests or starts failed during the benchmark; see bench.md and the log above",
              file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
