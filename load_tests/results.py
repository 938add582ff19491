"""What one benchmark run measured, and what follows from it (saturation, ratios, targets).

Kept apart from the code that measures, so the arithmetic and the verdicts can
be tested on made-up numbers and re-derived from a saved ``bench.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from load_tests.cold_start import ColdStart
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
# The targets.
SATURATION_SHARE_TARGET = 0.85
GATEWAY_OVERHEAD_P50_TARGET_MS = 3.0
NAIVE_SPEEDUP_TARGET = 1.5
REDUCED_DECODE_SHARE_TARGET = 0.25
COLD_START_TARGET_S = 10.0
FIRST_REQUEST_FACTOR_TARGET = 2.0


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
class BenchResult:
    machine: str
    started_at: str
    command: str
    settings: dict
    tuning: dict
    model_limits: list[LimitPoint] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    decoding: list[DecodeTiming] = field(default_factory=list)
    cold_start: ColdStart | None = None
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    other_load_cores: float = 0.0

    def model_limit(self, model: str) -> LimitPoint | None:
        points = [p for p in self.model_limits if p.model == model]
        return best(points) if points else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> BenchResult:
        """The inverse of ``to_json``: a saved ``bench.json`` back to a result that reports can be rewritten from."""
        scenarios = [Scenario(s["operation"], s["photo"], s["repeats"], [Point(**p) for p in s["points"]],
                              {target: Usage(**u) for target, u in s["usage"].items()}) for s in data["scenarios"]]
        cold = data.get("cold_start")
        return cls(
            machine=data["machine"], started_at=data["started_at"], command=data["command"],
            settings=data["settings"], tuning=data["tuning"],
            model_limits=[LimitPoint(**p) for p in data["model_limits"]], scenarios=scenarios,
            decoding=[DecodeTiming(**d) for d in data["decoding"]], cold_start=ColdStart(**cold) if cold else None,
            peak_rss_mib=data["peak_rss_mib"], other_load_cores=data["other_load_cores"],
        )


def median_throughput(values: list[float]) -> float:
    return median_of(values) if values else 0.0


@dataclass(frozen=True)
class Ratios:
    """c/a, c/b, c/d at saturation, and the gateway's p50 overhead over Triton direct at concurrency 1."""

    gateway_over_limit: float | None
    gateway_over_triton: float | None
    gateway_over_naive: float | None
    gateway_overhead_p50_ms: float | None
    gateway_p95_at_saturation_ms: float | None
    naive_p95_at_same_concurrency_ms: float | None


def ratios(result: BenchResult, scenario: Scenario) -> Ratios:
    gateway, triton, naive = (scenario.saturation(t) for t in (GATEWAY, TRITON, NAIVE))
    limit = result.model_limit(OPERATIONS[scenario.operation].model)
    gateway_1, triton_1 = scenario.at(GATEWAY, 1), scenario.at(TRITON, 1)
    naive_same = scenario.at(NAIVE, gateway.concurrency) if gateway else None
    return Ratios(
        gateway_over_limit=ratio(gateway.throughput, limit.images_per_s) if gateway and limit else None,
        gateway_over_triton=ratio(gateway.throughput, triton.throughput) if gateway and triton else None,
        gateway_over_naive=ratio(gateway.throughput, naive.throughput) if gateway and naive else None,
        gateway_overhead_p50_ms=gateway_1.p50_ms - triton_1.p50_ms if gateway_1 and triton_1 else None,
        gateway_p95_at_saturation_ms=gateway.p95_ms if gateway else None,
        naive_p95_at_same_concurrency_ms=naive_same.p95_ms if naive_same else None,
    )


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    reached: bool | None  # None: not measured in this run


def verdicts(result: BenchResult) -> list[Verdict]:
    """Each target of the issue against this run's numbers."""
    found = []
    main = [s for s in result.scenarios if s.photo == result.settings.get("photo")]
    for scenario in main:
        r = ratios(result, scenario)
        name = f"{scenario.operation}, {scenario.photo}"
        found.append(_verdict(f"gateway at saturation >= {SATURATION_SHARE_TARGET:.0%} of the model's own limit ({name})",
                              r.gateway_over_limit, lambda v: f"{v:.0%}", lambda v: v >= SATURATION_SHARE_TARGET))
        if scenario is main[0]:  # the main row; a few ms are lost in the noise of a 0.3 s U2-Netp request
            found.append(_verdict(
                f"gateway p50 overhead over Triton direct <= {GATEWAY_OVERHEAD_P50_TARGET_MS:g} ms ({name})",
                r.gateway_overhead_p50_ms, lambda v: f"{v:+.1f} ms", lambda v: v <= GATEWAY_OVERHEAD_P50_TARGET_MS))
        equal_p95 = (r.gateway_p95_at_saturation_ms is not None and r.naive_p95_at_same_concurrency_ms is not None
                     and r.gateway_p95_at_saturation_ms <= r.naive_p95_at_same_concurrency_ms)
        found.append(_verdict(
            f">= {NAIVE_SPEEDUP_TARGET:g}x the naive baseline's throughput at equal or better p95 ({name})",
            r.gateway_over_naive,
            lambda v: f"{v:.2f}x; p95 {_ms(r.gateway_p95_at_saturation_ms)} vs naive {_ms(r.naive_p95_at_same_concurrency_ms)}",
            lambda v: v >= NAIVE_SPEEDUP_TARGET and equal_p95))
    twelve = next((d for d in result.decoding if d.photo == "12MP" and d.input_side == 512), None)
    found.append(_verdict(f"12 MP JPEG to a 512-px input <= {REDUCED_DECODE_SHARE_TARGET:.2f} of full decode + resize",
                          twelve.reduced_share if twelve else None, lambda v: f"{v:.2f}",
                          lambda v: v <= REDUCED_DECODE_SHARE_TARGET))
    cold = result.cold_start
    found.append(_verdict(f"cold start ({cold.command if cold else 'make run'}) to ready <= {COLD_START_TARGET_S:g} s",
                          median_of(cold.ready_s) if cold and cold.ready_s else None, lambda v: f"{v:.1f} s",
                          lambda v: v <= COLD_START_TARGET_S))
    for operation, factor in first_request_factors(cold).items():
        found.append(_verdict(f"first request after ready <= {FIRST_REQUEST_FACTOR_TARGET:g}x steady p50 ({operation})",
                              factor, lambda v: f"{v:.2f}x", lambda v: v <= FIRST_REQUEST_FACTOR_TARGET))
    return found


def first_request_factors(cold: ColdStart | None) -> dict[str, float]:
    """Per operation: median first-request latency over median steady-state latency."""
    if cold is None:
        return {}
    return {op: median_of(cold.first_ms[op]) / median_of(cold.steady_ms[op])
            for op in cold.first_ms if cold.first_ms[op] and cold.steady_ms.get(op)}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _verdict(target: str, value: float | None, show, passes) -> Verdict:
    if value is None:
        return Verdict(target, "not measured", None)
    return Verdict(target, show(value), bool(passes(value)))
