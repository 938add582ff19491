"""PNG plots of a benchmark run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from load_tests.operations import OPERATIONS
from load_tests.preprocessing import DecodeTiming
from load_tests.report import plot_name
from load_tests.results import TARGET_LABELS, BenchResult, Scenario, Throughput

OFF_SCALE = 3.0  # the models' own limit is drawn as a line only up to this multiple of the best served rate
STYLES = {"triton_grpc": "o-", "perf_analyzer": "^:", "gateway": "s-", "naive": "x--"}


def plot_scenario(section: Throughput, scenario: Scenario, path: Path) -> None:
    """Throughput and p95 against concurrency per target, with the model's own limit as a line."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, label in TARGET_LABELS.items():
        points = scenario.of(target)
        if points:
            x = [p.concurrency for p in points]
            left.plot(x, [p.throughput for p in points], STYLES[target], label=label)
            right.plot(x, [p.p95_ms for p in points], STYLES[target], label=label)
    limit = section.model_limit(OPERATIONS[scenario.operation].model)
    served = max((p.throughput for p in scenario.points), default=0.0)
    title = "throughput"
    if limit is not None and limit.images_per_s <= OFF_SCALE * served:
        left.axhline(limit.images_per_s, color="grey", linestyle="-.", label=f"a. {limit.model} alone (ONNX Runtime)")
    elif limit is not None:  # a line 10x above the data would flatten it: say the number instead
        title += f" (a. {limit.model} alone: {limit.images_per_s:.0f}/s, off scale)"
    left.set(xlabel="concurrency (requests in flight)", ylabel="requests / s", title=title, ylim=(0, None))
    right.set(xlabel="concurrency (requests in flight)", ylabel="ms", title="p95 latency", ylim=(0, None))
    concurrencies = sorted({p.concurrency for p in scenario.points})
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle(f"{scenario.operation}, {scenario.photo} JPEG")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_decoding(timings: list[DecodeTiming], path: Path) -> None:
    """Full versus reduced-size decode per photo size and model input."""
    figure, axis = plt.subplots(figsize=(8, 4))
    labels = [f"{t.photo}\n{t.input_side}px" for t in timings]
    x = range(len(timings))
    axis.bar([i - 0.2 for i in x], [t.full_ms for t in timings], width=0.4, label="full decode + resize")
    axis.bar([i + 0.2 for i in x], [t.reduced_ms for t in timings], width=0.4, label="reduced-size decode + resize")
    axis.set_xticks(list(x), labels, fontsize=8)
    axis.set(ylabel="ms (median)", title="JPEG to model input")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_plots(result: BenchResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for scenario in result.throughput.scenarios if result.throughput else []:
        if len({p.concurrency for p in scenario.points}) > 1:
            paths.append(out / plot_name(scenario))
            plot_scenario(result.throughput, scenario, paths[-1])
    if result.decoding:
        paths.append(out / "bench-preprocessing.png")
        plot_decoding(result.decoding.timings, paths[-1])
    return paths
