"""What the benchmark measured, section by section, each with when, by what and on what it was measured.

``bench.json`` is this structure; ``bench.md`` and the plots are written from it alone, so a section
measured on another day by another command keeps its own provenance beside the sections of the latest run.
Kept apart from the code that measures, so the arithmetic can be tested on made-up numbers.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from load_tests.model_limit import LimitPoint, best
from load_tests.operations import OPERATIONS
from load_tests.preprocessing import DecodeTiming
from load_tests.stats import median_of, ratio

TRITON, GATEWAY, NAIVE, PERF_ANALYZER = "triton_grpc", "gateway", "naive", "perf_analyzer"
TARGET_LABELS = {
    TRITON: "b. Triton gRPC (asyncio client)",
    PERF_ANALYZER: "b. Triton gRPC (perf_analyzer)",
    GATEWAY: "c. gateway HTTP",
    NAIVE: "d. naive FastAPI",
}
SECTIONS = ("throughput", "latency", "decoding", "start", "first_start", "hot_path", "tuning")


@dataclass
class Provenance:
    """When, by which command and on what machine a section was measured."""

    at: str
    command: str
    machine: str
    note: str = ""


@dataclass
class Point:
    """One target at one concurrency: median throughput of the repeats, percentiles of all their requests."""

    target: str
    concurrency: int
    throughput: float
    throughputs: list[float]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    first_error: str = ""


@dataclass
class Usage:
    """Average CPU (cores) per watched process and peak RSS (MiB) while one target was loaded, and the
    CPU each process spent per successful request of that target (ms; all its runs, warm-ups included)."""

    cores: dict[str, float]
    peak_rss_mib: dict[str, float]
    other_cores: float
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


@dataclass
class Scenario:
    operation: str
    photo: str
    repeats: int = 1
    points: list[Point] = field(default_factory=list)
    usage: dict[str, Usage] = field(default_factory=dict)

    def of(self, target: str) -> list[Point]:
        return sorted((p for p in self.points if p.target == target), key=lambda p: p.concurrency)

    def at(self, target: str, concurrency: int) -> Point | None:
        return next((p for p in self.of(target) if p.concurrency == concurrency), None)

    def saturation(self, target: str) -> Point | None:
        """The point with the highest throughput: the target's capacity on this machine."""
        points = self.of(target)
        return max(points, key=lambda p: p.throughput) if points else None


@dataclass
class Throughput:
    """a. to d.: the models alone, then Triton direct, the gateway and the naive baseline under load."""

    measured: Provenance
    settings: dict
    tuning: dict
    model_limits: list[LimitPoint] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    other_load_cores: float = 0.0

    def model_limit(self, model: str) -> LimitPoint | None:
        points = [p for p in self.model_limits if p.model == model]
        return best(points) if points else None


@dataclass
class SequentialRow:
    operation: str
    photo: str
    p50_ms: float
    p95_ms: float
    requests: int
    errors: int = 0
    first_error: str = ""


@dataclass
class Sequential:
    """Every operation, one request at a time through the gateway."""

    measured: Provenance
    rows: list[SequentialRow] = field(default_factory=list)


@dataclass
class Decoding:
    measured: Provenance
    timings: list[DecodeTiming] = field(default_factory=list)


@dataclass
class ColdStart:
    """``make run`` to ready with everything built, then each operation's first and steady requests."""

    measured: Provenance
    command: str
    ready_s: list[float] = field(default_factory=list)
    first_ms: dict[str, list[float]] = field(default_factory=dict)
    steady_ms: dict[str, list[float]] = field(default_factory=dict)

    def first_request_factors(self) -> dict[str, float]:
        """Per operation: median first-request latency over median steady-state latency."""
        return {op: median_of(self.first_ms[op]) / median_of(self.steady_ms[op])
                for op in self.first_ms if self.first_ms[op] and self.steady_ms.get(op)}


@dataclass
class FirstStart:
    """Start to ready with an empty download cache and no converted models."""

    measured: Provenance
    command: str
    ready_s: list[float] = field(default_factory=list)


@dataclass
class LedgerRow:
    step: str
    orm_ms: float
    prebuilt_ms: float


@dataclass
class PngRow:
    output: str
    default_ms: float
    default_kib: float
    rle_ms: float
    rle_kib: float


@dataclass
class HotPath:
    measured: Provenance
    repeats: int
    ledger: list[LedgerRow] = field(default_factory=list)
    png: list[PngRow] = field(default_factory=list)


@dataclass
class Comparison:
    """One tuning variant against the baseline at one point; runs alternate A, B, A, B."""

    variant: str
    change: str
    operation: str
    concurrency: int
    baseline_rps: float
    variant_rps: float
    baseline_p50_ms: float
    variant_p50_ms: float
    throughput_change: float


@dataclass
class HopCost:
    """Per request at concurrency 1, from Triton's statistics (ms)."""

    ensemble: str
    ensemble_ms: float
    steps_ms: dict[str, float]  # each step's whole time per request (queue + compute)
    transfer_ms: float  # of which moving tensors into and out of the python-backend stubs
    scheduling_ms: float  # ensemble time not spent inside any step


@dataclass
class TransferPoint:
    operation: str
    transfer: str
    concurrency: int
    throughput: float
    p50_ms: float


@dataclass
class TuningRun:
    measured: Provenance
    settings: dict
    comparisons: list[Comparison] = field(default_factory=list)
    hops: list[HopCost] = field(default_factory=list)
    transfers: list[TransferPoint] = field(default_factory=list)


@dataclass
class BenchResult:
    """Every section; a run fills the ones it measured."""

    throughput: Throughput | None = None
    latency: Sequential | None = None
    decoding: Decoding | None = None
    start: ColdStart | None = None
    first_start: FirstStart | None = None
    hot_path: HotPath | None = None
    tuning: list[TuningRun] = field(default_factory=list)  # a log: each run is kept

    def merged(self, newer: BenchResult) -> BenchResult:
        """This result with the sections ``newer`` measured replaced, and its tuning runs added."""
        replaced = {name: getattr(newer, name) for name in SECTIONS[:-1] if getattr(newer, name) is not None}
        return dataclasses.replace(self, **replaced, tuning=self.tuning + newer.tuning)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> BenchResult:
        """The inverse of ``to_json``: a saved ``bench.json`` back to a result the report can be written from."""
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise KeyError(f"unknown sections {sorted(unknown)}")
        return _load(cls, data)


def _load(kind: Any, data: Any) -> Any:
    """``data`` (parsed JSON) as ``kind``, following the dataclasses' type hints."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _load(hints[f.name], data[f.name]) for f in dataclasses.fields(kind) if f.name in data})
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return [_load(arguments[0], item) for item in data]
    if origin is dict:
        return {key: _load(arguments[1], value) for key, value in data.items()}
    if origin in (types.UnionType, typing.Union):  # X | None
        return None if data is None else _load(next(a for a in arguments if a is not type(None)), data)
    return data


@dataclass(frozen=True)
class Ratios:
    """c/a, c/b, c/d at saturation, and the gateway's p50 overhead over Triton direct at concurrency 1."""

    gateway_over_limit: float | None
    gateway_over_triton: float | None
    gateway_over_naive: float | None
    gateway_overhead_p50_ms: float | None


def ratios(section: Throughput, scenario: Scenario) -> Ratios:
    gateway, triton, naive = (scenario.saturation(t) for t in (GATEWAY, TRITON, NAIVE))
    limit = section.model_limit(OPERATIONS[scenario.operation].model)
    gateway_1, triton_1 = scenario.at(GATEWAY, 1), scenario.at(TRITON, 1)
    return Ratios(
        gateway_over_limit=ratio(gateway.throughput, limit.images_per_s) if gateway and limit else None,
        gateway_over_triton=ratio(gateway.throughput, triton.throughput) if gateway and triton else None,
        gateway_over_naive=ratio(gateway.throughput, naive.throughput) if gateway and naive else None,
        gateway_overhead_p50_ms=gateway_1.p50_ms - triton_1.p50_ms if gateway_1 and triton_1 else None,
    )
