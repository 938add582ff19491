"""Writers of a benchmark run: ``bench.md`` (tables a reader can check) and ``bench.json`` (every number)."""

from __future__ import annotations

import json
from pathlib import Path

from converters.triton_config import TargetTuning
from load_tests.model_limit import BATCH_SIZES
from load_tests.operations import OPERATIONS
from load_tests.results import (GATEWAY, NAIVE, TARGET_LABELS, TRITON, BenchResult, Scenario,
                                first_request_factors, ratios, verdicts)
from load_tests.stats import median_of

PROCESSES = ("triton", "gateway", "naive", "load generator")
TUNING_FIELDS = tuple(TargetTuning.__dataclass_fields__)


def _num(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ({value:.0%})"


def plot_name(scenario: Scenario) -> str:
    return f"bench-{scenario.operation}-{scenario.photo}.png"


def _targets(result: BenchResult) -> list[str]:
    lines = ["## Targets", "", "| target | measured | reached |", "|---|---|---|"]
    for verdict in verdicts(result):
        reached = {True: "yes", False: "**no**", None: "not measured"}[verdict.reached]
        lines.append(f"| {verdict.target} | {verdict.measured} | {reached} |")
    return lines + [""]


def _model_limits(result: BenchResult) -> list[str]:
    lines = ["## a. The models' own limit: ONNX Runtime on preprocessed tensors", "",
             "Images per second; no decoding, no serving, no PNG. The best cell of each model is its limit.", "",
             "| model | layout | " + " | ".join(f"batch {b}" for b in BATCH_SIZES) + " |",
             "|---|---|" + "---|" * len(BATCH_SIZES)]
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for point in result.model_limits:
        cells.setdefault((point.model, point.layout), {})[point.batch] = point.images_per_s
    for (model, layout), by_batch in cells.items():
        lines.append(f"| {model} | {layout} | " + " | ".join(_num(by_batch.get(b), 1) for b in BATCH_SIZES) + " |")
    lines += ["", "| model | limit (images/s) | at | ms per image |", "|---|---|---|---|"]
    for model in dict.fromkeys(p.model for p in result.model_limits):
        best = result.model_limit(model)
        assert best is not None
        lines.append(f"| {model} | {best.images_per_s:.1f} | {best.layout}, batch {best.batch} | "
                     f"{1e3 / best.images_per_s:.1f} |")
    return lines + [""]


def _scenario(result: BenchResult, scenario: Scenario) -> list[str]:
    lines = [f"## {scenario.operation}, {scenario.photo} JPEG: b. Triton direct, c. gateway, d. naive", "",
             f"Closed loop, requests in flight = concurrency; req/s is the median of {scenario.repeats} run(s), "
             "percentiles pool all their requests.", "",
             "| concurrency | target | req/s | p50 ms | p95 ms | p99 ms | requests | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for concurrency in sorted({p.concurrency for p in scenario.points}):
        for target in TARGET_LABELS:
            point = scenario.at(target, concurrency)
            if point is not None:
                error = f"{point.errors} ({point.first_error})" if point.errors else "0"
                lines.append(f"| {concurrency} | {TARGET_LABELS[target]} | {point.throughput:.1f} | {point.p50_ms:.1f} | "
                             f"{point.p95_ms:.1f} | {point.p99_ms:.1f} | {point.requests} | {error} |")
    r = ratios(result, scenario)
    saturation = {t: scenario.saturation(t) for t in (TRITON, GATEWAY, NAIVE)}
    limit = result.model_limit(OPERATIONS[scenario.operation].model)
    lines += ["", "| at saturation | req/s | concurrency | p95 ms |", "|---|---|---|---|"]
    if limit is not None:
        lines.append(f"| a. model's own limit ({limit.model}) | {limit.images_per_s:.1f} | batch {limit.batch} | |")
    for target, point in saturation.items():
        if point is not None:
            lines.append(f"| {TARGET_LABELS[target]} | {point.throughput:.1f} | {point.concurrency} | {point.p95_ms:.0f} |")
    lines += ["", f"Ratios at saturation: c/a = {_share(r.gateway_over_limit)}, c/b = {_share(r.gateway_over_triton)}, "
                  f"c/d = {_num(r.gateway_over_naive, 2, 'x')}. Gateway p50 overhead over Triton direct at concurrency 1: "
                  f"{_num(r.gateway_overhead_p50_ms, 1, ' ms')}.", ""]
    if len({p.concurrency for p in scenario.points}) > 1:
        lines += [f"![{scenario.operation}]({plot_name(scenario)})", ""]
    return lines


def _other_sizes(scenarios: list[Scenario]) -> list[str]:
    if not scenarios:
        return []
    lines = ["## Other photo sizes", "",
             "One run per target at one concurrency (req/s, p50 / p95 ms); c/d is gateway over naive throughput.", "",
             "| operation | photo | concurrency | " + " | ".join(TARGET_LABELS.values()) + " | c/d |",
             "|---|---|---|" + "---|" * (len(TARGET_LABELS) + 1)]
    for scenario in scenarios:
        for concurrency in sorted({p.concurrency for p in scenario.points}):
            cells = []
            for target in TARGET_LABELS:
                point = scenario.at(target, concurrency)
                cells.append("n/a" if point is None else
                             f"{point.throughput:.1f} ({point.p50_ms:.0f} / {point.p95_ms:.0f})")
            gateway, naive = scenario.at(GATEWAY, concurrency), scenario.at(NAIVE, concurrency)
            speedup = gateway.throughput / naive.throughput if gateway and naive and naive.throughput else None
            lines.append(f"| {scenario.operation} | {scenario.photo} | {concurrency} | " + " | ".join(cells)
                         + f" | {_num(speedup, 2, 'x')} |")
    return lines + [""]


def _usage(result: BenchResult) -> list[str]:
    lines = ["## CPU and memory per process", "",
             "Average CPU in cores (1.0 = one core busy) while each target was loaded, over all its runs, and in "
             "brackets the CPU ms that process spent per request; Triton counts its python-backend stub processes. "
             "\"other\" is CPU used by processes outside the benchmark.", "",
             "| scenario | loaded target | " + " | ".join(PROCESSES) + " | other |",
             "|---|---|" + "---|" * (len(PROCESSES) + 1)]
    for scenario in result.scenarios:
        for target in (t for t in TARGET_LABELS if t in scenario.usage):
            usage = scenario.usage[target]
            cells = [_num(usage.cores.get(p), 2) + (f" ({usage.cpu_ms_per_request[p]:.1f} ms)"
                                                      if usage.cores.get(p, 0) >= 0.01 and p in usage.cpu_ms_per_request
                                                      else "") for p in PROCESSES]
            lines.append(f"| {scenario.operation} {scenario.photo} | {TARGET_LABELS[target]} | " + " | ".join(cells)
                         + f" | {usage.other_cores:.2f} |")
    lines += ["", "Peak RSS while the targets were loaded (MiB; a process tree's RSS is summed, so pages shared by Triton's "
              "stub processes are counted once per process):",
              "", "| process | peak RSS MiB |", "|---|---|"]
    for name in (p for p in PROCESSES if p in result.peak_rss_mib):
        lines.append(f"| {name} | {result.peak_rss_mib[name]:.0f} |")
    return lines + [""]


def _decoding(result: BenchResult) -> list[str]:
    lines = ["## e. Preprocessing alone: JPEG to model input", "",
             "Median ms from encoded bytes to a float32 tensor (decode, resize, normalise), single thread.", "",
             "| photo | model input | full decode + resize | reduced-size (DCT-scaled) decode + resize | reduced / full |",
             "|---|---|---|---|---|"]
    for timing in result.decoding:
        lines.append(f"| {timing.photo} | {timing.input_side}x{timing.input_side} | {timing.full_ms:.1f} | "
                     f"{timing.reduced_ms:.1f} | {timing.reduced_share:.2f} |")
    return lines + ["", "![preprocessing](bench-preprocessing.png)", ""]


def _cold_start(result: BenchResult) -> list[str]:
    cold = result.cold_start
    if cold is None:
        return []
    lines = ["## Cold start", "",
             f"`{cold.command}` with the virtualenv and models already built, to the gateway's `/readyz` = 200: "
             f"median {median_of(cold.ready_s):.1f} s (runs: {', '.join(f'{s:.1f}' for s in cold.ready_s)}).", "",
             "| operation | first request after ready, ms (median) | steady-state p50 ms | first / steady |",
             "|---|---|---|---|"]
    for operation, factor in first_request_factors(cold).items():
        lines.append(f"| {operation} | {median_of(cold.first_ms[operation]):.0f} | "
                     f"{median_of(cold.steady_ms[operation]):.0f} | {factor:.2f} |")
    return lines + [""]


def markdown(result: BenchResult) -> str:
    settings = result.settings
    tuning = {name: result.tuning[name] for name in TUNING_FIELDS if name in result.tuning}
    lines = [
        "# Benchmark: serving overhead against the models' own limit", "",
        f"Command: `{result.command}`, started {result.started_at}.", "",
        f"Machine: {result.machine}.", "",
        f"Other load on the machine while the targets were loaded: {result.other_load_cores:.2f} cores on average "
        "(CPU used by processes outside the benchmark; near 0 means it was otherwise idle).", "",
        f"Settings: photo {settings['photo']} JPEG; concurrency {settings['concurrency']}; {settings['repeats']} run(s) "
        f"per point, each a warm-up (>= {settings['warmup_s']} s and one answer per worker) then a window of "
        f"{settings['duration_s']} s or 4 rounds of requests, whichever is longer; Triton CPU tuning "
        f"`{tuning}`.", "",
        *_targets(result), *_model_limits(result),
    ]
    extra = [s for s in result.scenarios if s.photo != settings["photo"]]
    for scenario in result.scenarios:
        if scenario not in extra:
            lines += _scenario(result, scenario)
    lines += _other_sizes(extra) + _usage(result) + _decoding(result) + _cold_start(result)
    return "\n".join(lines)


def write_results(result: BenchResult, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "bench.md", out / "bench.json"
    md.write_text(markdown(result))
    js.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return md, js
