"""Percentiles, saturation, the ratios c/a, c/b, c/d, target verdicts and the result writers, on known numbers."""

import json
import math
from pathlib import Path

import pytest

from load_tests import bench
from load_tests.cold_start import ColdStart
from load_tests.model_limit import LimitPoint, best
from load_tests.plots import write_plots
from load_tests.preprocessing import DecodeTiming
from load_tests.report import write_results
from load_tests.results import GATEWAY, NAIVE, TRITON, BenchResult, Point, Scenario, Usage, ratios, verdicts
from load_tests.stats import Latency, median_of, percentile, ratio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_percentiles_interpolate_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert Latency.from_seconds([0.010, 0.020, 0.030]) == Latency(20.0, pytest.approx(29.0), pytest.approx(29.8))


def test_empty_samples_and_bad_quantiles_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        median_of([])


def test_ratio_and_median() -> None:
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(1.0, 0.0) is None
    assert median_of([5.0, 1.0, 3.0]) == 3.0


def point(target: str, concurrency: int, throughput: float, p50: float, p95: float) -> Point:
    return Point(target, concurrency, throughput, [throughput], p50, p95, p95 * 1.2, requests=100)


def sample_result() -> BenchResult:
    scenario = Scenario("mask_fast", "1MP", points=[
        point(TRITON, 1, 20.0, 40.0, 50.0), point(TRITON, 4, 30.0, 120.0, 150.0),
        point(GATEWAY, 1, 18.0, 42.5, 55.0), point(GATEWAY, 4, 27.0, 140.0, 170.0),
        point(NAIVE, 1, 19.0, 45.0, 60.0), point(NAIVE, 4, 15.0, 250.0, 400.0),
    ], usage={GATEWAY: Usage({"triton": 1.5, "gateway": 0.3}, {"triton": 700.0, "gateway": 120.0}, 0.05,
                           {"triton": 50.0, "gateway": 10.0})})
    return BenchResult(
        machine="2 cores", started_at="now", command="make bench", tuning={"model_instances": 1},
        settings={"photo": "1MP", "concurrency": [1, 4], "repeats": 3, "duration_s": 3.0, "warmup_s": 0.5},
        model_limits=[LimitPoint("segmentation_fast", "1 session x 2 threads", 1, 100.0),
                      LimitPoint("segmentation_fast", "2 sessions x 1 thread", 1, 120.0),
                      LimitPoint("segmentation_fast", "2 sessions x 1 thread", 8, 80.0)],
        scenarios=[scenario],
        decoding=[DecodeTiming("12MP", 512, 100.0, 30.0), DecodeTiming("1MP", 512, 20.0, 19.0)],
        cold_start=ColdStart("make -s run", [6.0, 7.0, 8.0], {"mask_fast": [90.0]}, {"mask_fast": [40.0, 45.0, 50.0]}),
        peak_rss_mib={"triton": 700.0, "gateway": 120.0}, other_load_cores=0.05,
    )


def test_saturation_picks_the_highest_throughput_and_ratios_follow() -> None:
    result = sample_result()
    scenario = result.scenarios[0]
    assert scenario.saturation(NAIVE).concurrency == 1
    assert best(result.model_limits).images_per_s == 120.0
    r = ratios(result, scenario)
    assert r.gateway_over_limit == pytest.approx(27.0 / 120.0)
    assert r.gateway_over_triton == pytest.approx(27.0 / 30.0)
    assert r.gateway_over_naive == pytest.approx(27.0 / 19.0)
    assert r.gateway_overhead_p50_ms == pytest.approx(2.5)
    assert (r.gateway_p95_at_saturation_ms, r.naive_p95_at_same_concurrency_ms) == (170.0, 400.0)


def test_verdicts_compare_each_target() -> None:
    reached = {v.target.split(" (")[0]: v.reached for v in verdicts(sample_result())}
    assert reached == {
        "gateway at saturation >= 85% of the model's own limit": False,  # 27 / 120
        "gateway p50 overhead over Triton direct <= 3 ms": True,  # 2.5 ms
        ">= 1.5x the naive baseline's throughput at equal or better p95": False,  # 1.42x
        "12 MP JPEG to a 512-px input <= 0.25 of full decode + resize": False,  # 0.30
        "cold start": True,  # median 7 s
        "first request after ready <= 2x steady p50": True,  # 90 / 45
    }


def test_a_missing_measurement_is_not_a_pass() -> None:
    result = sample_result()
    result.cold_start = None
    result.decoding = []
    missing = [v for v in verdicts(result) if v.reached is None]
    assert {v.measured for v in missing} == {"not measured"} and len(missing) == 2


def test_writers_produce_tables_json_and_plots(tmp_path: Path) -> None:
    result = sample_result()
    md, js = write_results(result, tmp_path)
    text = md.read_text()
    assert "| segmentation_fast | 120.0 | 2 sessions x 1 thread, batch 1 | 8.3 |" in text
    assert "| 4 | c. gateway HTTP | 27.0 | 140.0 | 170.0 | 204.0 | 100 | 0 |" in text
    assert "c/a = 0.23 (22%), c/b = 0.90 (90%), c/d = 1.42x" in text
    assert "| 12MP | 512x512 | 100.0 | 30.0 | 0.30 |" in text
    assert "median 7.0 s" in text
    assert "| mask_fast 1MP | c. gateway HTTP | 1.50 (50.0 ms) | 0.30 (10.0 ms) | n/a | n/a | 0.05 |" in text
    saved = json.loads(js.read_text())
    assert saved["scenarios"][0]["points"][3]["throughput"] == 27.0
    plots = write_plots(result, tmp_path)
    assert [p.name for p in plots] == ["bench-mask_fast-1MP.png", "bench-preprocessing.png"]
    for plot in plots:
        assert plot.read_bytes().startswith(PNG_SIGNATURE) and plot.stat().st_size > 10_000
    assert "![mask_fast](bench-mask_fast-1MP.png)" in text


def test_a_saved_bench_json_rewrites_the_same_report(tmp_path: Path) -> None:
    result = sample_result()
    md, js = write_results(result, tmp_path / "first")
    again = BenchResult.from_json(json.loads(js.read_text()))
    assert write_results(again, tmp_path / "second")[0].read_text() == md.read_text()
    assert bench.main(["--from-json", str(js), "--out", str(tmp_path / "third")]) == 0
    assert (tmp_path / "third" / "bench-mask_fast-1MP.png").exists()
    assert bench.main(["--from-json", str(tmp_path / "missing.json")]) == 2


def test_other_photo_sizes_get_one_compact_row(tmp_path: Path) -> None:
    result = sample_result()
    result.scenarios.append(Scenario("mask_fast", "12MP", points=[
        point(TRITON, 4, 3.0, 1100.0, 1500.0), point(GATEWAY, 4, 2.8, 1200.0, 1600.0), point(NAIVE, 4, 2.0, 1500.0, 2000.0)]))
    text = write_results(result, tmp_path)[0].read_text()
    assert ("| mask_fast | 12MP | 4 | 3.0 (1100 / 1500) | n/a | 2.8 (1200 / 1600) | 2.0 (1500 / 2000) | 1.40x |"
            in text)
    assert "## mask_fast, 12MP JPEG" not in text
    assert len([v for v in verdicts(result) if "overhead" in v.target]) == 1


def test_nan_percentiles_of_a_failed_point_still_render(tmp_path: Path) -> None:
    result = sample_result()
    result.scenarios[0].points.append(Point(TRITON, 8, 0.0, [0.0], math.nan, math.nan, math.nan, 0, 5, "boom"))
    md, _ = write_results(result, tmp_path)
    assert "| 8 | b. Triton gRPC (asyncio client) | 0.0 | nan | nan | nan | 0 | 5 (boom) |" in md.read_text()
