"""``bench.md`` (tables a reader can check) and ``bench.json`` (every number) from one ``BenchResult``."""

from __future__ import annotations

import json
from pathlib import Path

from converters.triton_config import TargetTuning
from load_tests.model_limit import BATCH_SIZES
from load_tests.operations import OPERATIONS
from load_tests.results import (
    GATEWAY,
    NAIVE,
    SECTIONS,
    TARGET_LABELS,
    TRITON,
    BenchResult,
    ColdStart,
    FirstStart,
    HotPath,
    Scenario,
    Sequential,
    Throughput,
    TuningRun,
    ratios,
)
from load_tests.stats import median_of

PROCESSES = ("triton", "gateway", "naive", "load generator")
TUNING_FIELDS = tuple(TargetTuning.__dataclass_fields__)
TITLES = {"throughput": "a.-d. Throughput", "latency": "Latency per operation", "decoding": "e. Preprocessing",
          "start": "Start to ready", "first_start": "First start", "hot_path": "Hot-path costs", "tuning": "tuning"}


def _num(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ({value:.0%})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|" for row in rows), ""]


def plot_name(scenario: Scenario) -> str:
    return f"bench-{scenario.operation}-{scenario.photo}.png"


def _provenance(result: BenchResult) -> list[str]:
    sections = [(TITLES[name], getattr(result, name)) for name in SECTIONS[:-1] if getattr(result, name)]
    runs = [(f"{TITLES['tuning']} run {number}", run) for number, run in enumerate(result.tuning, 1)]
    lines = ["Each section was measured as this table says; `--sections` re-measures some and keeps the others.", "",
             *_table(["section", "measured", "command"],
                     [[title, s.measured.at, f"`{s.measured.command}`"] for title, s in sections + runs]),
             *(f"- {title}: {s.measured.note}." for title, s in sections if s.measured.note)]
    lines += [""] if lines[-1] else []
    lines += [f"Machine: {m}.\n" for m in dict.fromkeys(s.measured.machine for _, s in sections + runs) if m]
    unrecorded = [title for title, s in sections + runs if not s.measured.machine]
    return lines + ([f"Machine not recorded for: {'; '.join(unrecorded)}.", ""] if unrecorded else [])


def _throughput(section: Throughput) -> list[str]:
    settings = section.settings
    tuning = {name: section.tuning[name] for name in TUNING_FIELDS if name in section.tuning}
    lines = [
        "## a.-d. Throughput: how it was measured", "",
        f"Other load on the machine while the targets were loaded: {section.other_load_cores:.2f} cores on average "
        "(CPU used by processes outside the benchmark; near 0 means it was otherwise idle).", "",
        f"Settings: photo {settings['photo']} JPEG; concurrency {settings['concurrency']}; "
        f"{settings['repeats']} run(s) per point, each a warm-up (>= {settings['warmup_s']} s and one answer per "
        f"worker) then a window of {settings['duration_s']} s or 4 rounds of requests, whichever is longer; "
        f"Triton CPU tuning `{tuning}`.", "",
        "## a. The models' own limit: ONNX Runtime on preprocessed tensors", "",
        "Images per second; no decoding, no serving, no PNG. The best cell of each model is its limit.", ""]
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for point in section.model_limits:
        cells.setdefault((point.model, point.layout), {})[point.batch] = point.images_per_s
    lines += _table(["model", "layout", *(f"batch {b}" for b in BATCH_SIZES)],
                    [[model, layout, *(_num(by_batch.get(b), 1) for b in BATCH_SIZES)]
                     for (model, layout), by_batch in cells.items()])
    limits = [section.model_limit(model) for model in dict.fromkeys(p.model for p in section.model_limits)]
    lines += _table(["model", "limit (images/s)", "at", "ms per image"],
                    [[b.model, f"{b.images_per_s:.1f}", f"{b.layout}, batch {b.batch}", f"{1e3 / b.images_per_s:.1f}"]
                     for b in limits if b is not None])
    extra = [s for s in section.scenarios if s.photo != settings["photo"]]
    for scenario in section.scenarios:
        if scenario not in extra:
            lines += _scenario(section, scenario)
    return lines + _other_sizes(extra) + _usage(section)


def _scenario(section: Throughput, scenario: Scenario) -> list[str]:
    lines = [f"## {scenario.operation}, {scenario.photo} JPEG: b. Triton direct, c. gateway, d. naive", "",
             f"Closed loop, requests in flight = concurrency; req/s is the median of {scenario.repeats} run(s), "
             "percentiles pool all their requests.", ""]
    rows = []
    for concurrency in sorted({p.concurrency for p in scenario.points}):
        for target in TARGET_LABELS:
            point = scenario.at(target, concurrency)
            if point is not None:
                error = f"{point.errors} ({point.first_error})" if point.errors else "0"
                rows.append([str(concurrency), TARGET_LABELS[target], f"{point.throughput:.1f}", f"{point.p50_ms:.1f}",
                             f"{point.p95_ms:.1f}", f"{point.p99_ms:.1f}", str(point.requests), error])
    lines += _table(["concurrency", "target", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "errors"], rows)
    limit = section.model_limit(OPERATIONS[scenario.operation].model)
    rows = [[f"a. model's own limit ({limit.model})", f"{limit.images_per_s:.1f}", f"batch {limit.batch}", ""]] \
        if limit is not None else []
    for target in (TRITON, GATEWAY, NAIVE):
        point = scenario.saturation(target)
        if point is not None:
            rows.append([TARGET_LABELS[target], f"{point.throughput:.1f}", str(point.concurrency),
                         f"{point.p95_ms:.0f}"])
    lines += _table(["at saturation", "req/s", "concurrency", "p95 ms"], rows)
    r = ratios(section, scenario)
    lines += [f"Ratios at saturation: c/a = {_share(r.gateway_over_limit)}, c/b = {_share(r.gateway_over_triton)}, "
              f"c/d = {_num(r.gateway_over_naive, 2, 'x')}. Gateway p50 overhead over Triton direct at concurrency 1: "
              f"{_num(r.gateway_overhead_p50_ms, 1, ' ms')}.", ""]
    if len({p.concurrency for p in scenario.points}) > 1:
        lines += [f"![{scenario.operation}]({plot_name(scenario)})", ""]
    return lines


def _other_sizes(scenarios: list[Scenario]) -> list[str]:
    if not scenarios:
        return []
    rows, targets = [], [t for t in TARGET_LABELS if any(s.of(t) for s in scenarios)]
    for scenario in scenarios:
        for concurrency in sorted({p.concurrency for p in scenario.points}):
            cells = [point and f"{point.throughput:.1f} ({point.p50_ms:.0f} / {point.p95_ms:.0f})"
                     for point in (scenario.at(target, concurrency) for target in targets)]
            gateway, naive = scenario.at(GATEWAY, concurrency), scenario.at(NAIVE, concurrency)
            speedup = gateway.throughput / naive.throughput if gateway and naive and naive.throughput else None
            rows.append([scenario.operation, scenario.photo, str(concurrency), *(c or "n/a" for c in cells),
                         _num(speedup, 2, "x")])
    return ["## Other photo sizes", "",
            "One run per target at one concurrency (req/s, p50 / p95 ms); c/d is gateway over naive throughput.", "",
            *_table(["operation", "photo", "concurrency", *(TARGET_LABELS[t] for t in targets), "c/d"], rows)]


def _usage(section: Throughput) -> list[str]:
    rows = []
    for scenario in section.scenarios:
        for target in (t for t in TARGET_LABELS if t in scenario.usage):
            usage = scenario.usage[target]
            cells = [_num(usage.cores.get(p), 2) + (f" ({usage.cpu_ms_per_request[p]:.1f} ms)"
                                                      if usage.cores.get(p, 0) >= 0.01 and p in usage.cpu_ms_per_request
                                                      else "") for p in PROCESSES]
            rows.append([f"{scenario.operation} {scenario.photo}", TARGET_LABELS[target], *cells,
                         f"{usage.other_cores:.2f}"])
    return ["## CPU and memory per process", "",
            "Average CPU in cores (1.0 = one core busy) while each target was loaded, over all its runs, and in "
            "brackets the CPU ms that process spent per request; Triton counts its python-backend stub processes. "
            "\"other\" is CPU used by processes outside the benchmark.", "",
            *_table(["scenario", "loaded target", *PROCESSES, "other"], rows),
            "Peak RSS while the targets were loaded (MiB; a process tree's RSS is summed, so pages shared by Triton's "
            "stub processes are counted once per process):", "",
            *_table(["process", "peak RSS MiB"], [[name, f"{section.peak_rss_mib[name]:.0f}"]
                                                 for name in PROCESSES if name in section.peak_rss_mib])]


def _latency(section: Sequential) -> list[str]:
    return ["## Latency per operation: one request at a time, through the gateway", "",
            "Sequential requests (concurrency 1) after a warm-up; the response of each is checked.", "",
            *_table(["endpoint", "photo", "p50 ms", "p95 ms", "requests"],
                    [[f"`{OPERATIONS[r.operation].http_path}`", f"{r.photo} JPEG", f"{r.p50_ms:.0f}", f"{r.p95_ms:.0f}",
                      f"{r.requests}" + (f", {r.errors} failed ({r.first_error})" if r.errors else "")]
                     for r in section.rows])]


def _decoding(result: BenchResult) -> list[str]:
    rows = [[t.photo, f"{t.input_side}x{t.input_side}", f"{t.full_ms:.1f}", f"{t.reduced_ms:.1f}",
             f"{t.reduced_share:.2f}"] for t in result.decoding.timings]
    return ["## e. Preprocessing alone: JPEG to model input", "",
            "Median ms from encoded bytes to a float32 tensor (decode, resize, normalise), single thread.", "",
            *_table(["photo", "model input", "full decode + resize", "reduced-size (DCT-scaled) decode + resize",
                     "reduced / full"], rows), "![preprocessing](bench-preprocessing.png)", ""]


def _start(cold: ColdStart | None, first: FirstStart | None) -> list[str]:
    lines = ["## Start to ready", ""]
    if cold is not None:
        lines += [f"`{cold.command}` with the virtualenv and models already built, to the gateway's `/readyz` = 200: "
                  f"median {median_of(cold.ready_s):.1f} s (runs: {', '.join(f'{s:.1f}' for s in cold.ready_s)}).", "",
                  *_table(["operation", "first request after ready, ms (median)", "steady-state p50 ms",
                           "first / steady"],
                          [[op, f"{median_of(cold.first_ms[op]):.0f}", f"{median_of(cold.steady_ms[op]):.0f}",
                            f"{factor:.2f}"] for op, factor in cold.first_request_factors().items()])]
    if first is not None:
        lines += [f"First start: `{first.command}` with an empty download cache and no converted models (download, "
                  f"verify, convert, then start): {median_of(first.ready_s):.1f} s to ready.", ""]
    return lines


def _hot_path(section: HotPath) -> list[str]:
    return ["## Hot-path costs, each beside its baseline", "",
            f"Medians of {section.repeats} calls (PNG: {max(3, section.repeats // 10)}).", "",
            "Ledger transactions (SQLite, one thread): `gateway.ledger` against the same two transactions written "
            "the ORM way, statements built per call.", "",
            *_table(["step", "ORM, statements built per call (ms)", "statements built once (ms)", "ratio"],
                    [[r.step, f"{r.orm_ms:.3f}", f"{r.prebuilt_ms:.3f}", f"{r.prebuilt_ms / r.orm_ms:.2f}"]
                     for r in section.ledger]),
            "PNG encode of real 1 MP outputs (level 1), zlib's default strategy against run-length (what "
            "`imaging.outputs.encode_png` uses); the decoded pixels are identical.", "",
            *_table(["output", "default strategy ms", "KiB", "run-length (Z_RLE) ms", "KiB"],
                    [[r.output, f"{r.default_ms:.1f}", f"{r.default_kib:.0f}", f"{r.rle_ms:.1f}", f"{r.rle_kib:.0f}"]
                     for r in section.png])]


def _tuning(runs: list[TuningRun]) -> list[str]:
    if not runs:
        return []
    lines = ["## Tuning runs: each variant beside a baseline Triton, loaded in alternation", "",
             "Triton called directly over gRPC (asyncio client), A, B, A, B, so drift of the shared machine hits both; "
             "req/s is the median of the repeats, p50 pools their requests. The baseline is the tuning committed at "
             "the time of the run; decisions are in [tuning.md](tuning.md).", ""]
    for number, run in enumerate(runs, 1):
        lines += [f"### Tuning run {number}: {run.measured.at}", "",
                  f"`{run.measured.command}`; settings {run.settings}. {run.measured.note}".rstrip(), "",
                  *_table(["variant", "change", "operation", "concurrency", "baseline req/s", "variant req/s",
                           "throughput change", "baseline p50 ms", "variant p50 ms"],
                          [[c.variant, c.change, c.operation, str(c.concurrency), f"{c.baseline_rps:.1f}",
                            f"{c.variant_rps:.1f}", f"{c.throughput_change:+.0%}", f"{c.baseline_p50_ms:.0f}",
                            f"{c.variant_p50_ms:.0f}"] for c in run.comparisons])]
        if run.hops:
            lines += ["Cost of the ensemble's hops (baseline, concurrency 1, Triton statistics): scheduling = ensemble "
                      "time minus the time inside its steps; transfer = the steps' compute_input + compute_output.", "",
                      *_table(["ensemble", "ms/request", "inside steps ms", "scheduling ms", "transfer ms"],
                              [[h.ensemble, f"{h.ensemble_ms:.1f}",
                                ", ".join(f"{name} {ms:.1f}" for name, ms in h.steps_ms.items()),
                                f"{h.scheduling_ms:.1f}", f"{h.transfer_ms:.1f}"] for h in run.hops])]
        if run.transfers:
            lines += ["Protocol and transfer (baseline; perf_analyzer, which load_tests no longer runs):", "",
                      *_table(["operation", "transfer", "concurrency", "infer/s", "p50 ms"],
                              [[t.operation, t.transfer, str(t.concurrency), f"{t.throughput:.1f}", f"{t.p50_ms:.1f}"]
                               for t in run.transfers])]
    return lines


def markdown(result: BenchResult) -> str:
    lines = ["# Benchmark", "",
             "Written by `python -m load_tests.bench` (`make bench`) from [bench.json](bench.json); "
             "`python -m load_tests.bench --from-json load_tests/results/bench.json` rewrites it and the plots.", "",
             *_provenance(result)]
    if result.throughput:
        lines += _throughput(result.throughput)
    if result.latency:
        lines += _latency(result.latency)
    if result.decoding:
        lines += _decoding(result)
    if result.start or result.first_start:
        lines += _start(result.start, result.first_start)
    if result.hot_path:
        lines += _hot_path(result.hot_path)
    return "\n".join(lines + _tuning(result.tuning)).rstrip("\n") + "\n"


def write_results(result: BenchResult, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "bench.md", out / "bench.json"
    md.write_text(markdown(result))
    js.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return md, js

