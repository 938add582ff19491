"""Percentiles, saturation, the ratios c/a, c/b, c/d, the sections of bench.json and the document written from them."""

import json
import math
from pathlib import Path

import pytest

from load_tests import bench
from load_tests.model_limit import LimitPoint, best
from load_tests.plots import write_plots
from load_tests.preprocessing import DecodeTiming
from load_tests.report import markdown, write_results
from load_tests.results import (
    GATEWAY,
    NAIVE,
    TRITON,
    BenchResult,
    ColdStart,
    Comparison,
    Decoding,
    FirstStart,
    HotPath,
    LedgerRow,
    PngRow,
    Point,
    Provenance,
    Scenario,
    Sequential,
    SequentialRow,
    Throughput,
    TuningRun,
    Usage,
    ratios,
)
from load_tests.stats import Latency, median_of, percentile, ratio
from tests.conftest import REPO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN = Provenance("2026-01-01 10:00 UTC", "python -m load_tests.bench", "2 cores")
EARLIER = Provenance("2025-12-01", "python -m load_tests.bench --sections tuning", "", "an older baseline")
RESULTS = REPO / "load_tests" / "results"


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


def throughput_section() -> Throughput:
    scenario = Scenario("mask_fast", "1MP", points=[
        point(TRITON, 1, 20.0, 40.0, 50.0), point(TRITON, 4, 30.0, 120.0, 150.0),
        point(GATEWAY, 1, 18.0, 42.5, 55.0), point(GATEWAY, 4, 27.0, 140.0, 170.0),
        point(NAIVE, 1, 19.0, 45.0, 60.0), point(NAIVE, 4, 15.0, 250.0, 400.0),
    ], usage={GATEWAY: Usage({"triton": 1.5, "gateway": 0.3}, {"triton": 700.0, "gateway": 120.0}, 0.05,
                           {"triton": 50.0, "gateway": 10.0})})
    return Throughput(
        RUN, settings={"photo": "1MP", "concurrency": [1, 4], "repeats": 3, "duration_s": 3.0, "warmup_s": 0.5},
        tuning={"model_instances": 1},
        model_limits=[LimitPoint("segmentation_fast", "1 session x 2 threads", 1, 100.0),
                      LimitPoint("segmentation_fast", "2 sessions x 1 thread", 1, 120.0),
                      LimitPoint("segmentation_fast", "2 sessions x 1 thread", 8, 80.0)],
        scenarios=[scenario], peak_rss_mib={"triton": 700.0, "gateway": 120.0}, other_load_cores=0.05)


def sample_result() -> BenchResult:
    return BenchResult(
        throughput=throughput_section(),
        latency=Sequential(RUN, [SequentialRow("cutout_fast", "12MP", 1195.4, 1267.0, 10),
                                 SequentialRow("depth", "1MP", 64.0, 73.0, 8, 2, "BadResponse: HTTP 503")]),
        decoding=Decoding(RUN, [DecodeTiming("12MP", 512, 100.0, 30.0), DecodeTiming("1MP", 512, 20.0, 19.0)]),
        start=ColdStart(RUN, "make -s run", [6.0, 7.0, 8.0], {"mask_fast": [90.0]}, {"mask_fast": [40.0, 45.0, 50.0]}),
        first_start=FirstStart(RUN, "make -s run", [8.04]),
        hot_path=HotPath(RUN, 300, [LedgerRow("reserve", 1.2, 0.3)], [PngRow("mask", 7.3, 66.2, 7.5, 49.6)]),
        tuning=[TuningRun(EARLIER, {"photo": "1MP"}, [Comparison("no_batch_delay", "batch_delay_us 2000 -> 0",
                                                                "depth", 4, 26.0, 26.4, 155.0, 154.0, 0.0154)])],
    )


def test_saturation_picks_the_highest_throughput_and_ratios_follow() -> None:
    section = throughput_section()
    scenario = section.scenarios[0]
    assert scenario.saturation(NAIVE).concurrency == 1
    assert best(section.model_limits).images_per_s == 120.0
    r = ratios(section, scenario)
    assert r.gateway_over_limit == pytest.approx(27.0 / 120.0)
    assert r.gateway_over_triton == pytest.approx(27.0 / 30.0)
    assert r.gateway_over_naive == pytest.approx(27.0 / 19.0)
    assert r.gateway_overhead_p50_ms == pytest.approx(2.5)


def test_first_request_factor_is_first_over_steady_median() -> None:
    assert sample_result().start.first_request_factors() == {"mask_fast": pytest.approx(2.0)}


def test_writers_produce_every_section_json_and_plots(tmp_path: Path) -> None:
    md, js = write_results(sample_result(), tmp_path)
    text = md.read_text()
    for row in ("| segmentation_fast | 120.0 | 2 sessions x 1 thread, batch 1 | 8.3 |",
                "| 4 | c. gateway HTTP | 27.0 | 140.0 | 170.0 | 204.0 | 100 | 0 |",
                "c/a = 0.23 (22%), c/b = 0.90 (90%), c/d = 1.42x",
                "| mask_fast 1MP | c. gateway HTTP | 1.50 (50.0 ms) | 0.30 (10.0 ms) | n/a | n/a | 0.05 |",
                "| `/v1/cutout?model=fast` | 12MP JPEG | 1195 | 1267 | 10 |",
                "| `/v1/depth` | 1MP JPEG | 64 | 73 | 8, 2 failed (BadResponse: HTTP 503) |",
                "| 12MP | 512x512 | 100.0 | 30.0 | 0.30 |", "median 7.0 s", "| mask_fast | 90 | 45 | 2.00 |",
                "no converted models (download, verify, convert, then start): 8.0 s to ready",
                "| reserve | 1.200 | 0.300 | 0.25 |", "| mask | 7.3 | 66 | 7.5 | 50 |",
                "| no_batch_delay | batch_delay_us 2000 -> 0 | depth | 4 | 26.0 | 26.4 | +2% | 155 | 154 |",
                "| tuning run 1 | 2025-12-01 | `python -m load_tests.bench --sections tuning` |",
                "an older baseline", "Machine: 2 cores.", "Machine not recorded for: tuning run 1."):
        assert row in text, row
    assert "## Targets" not in text and "reached" not in text  # measurements and ratios, not an old issue's verdicts
    assert json.loads(js.read_text())["throughput"]["scenarios"][0]["points"][3]["throughput"] == 27.0
    plots = write_plots(sample_result(), tmp_path)
    assert [p.name for p in plots] == ["bench-mask_fast-1MP.png", "bench-preprocessing.png"]
    for plot in plots:
        assert plot.read_bytes().startswith(PNG_SIGNATURE) and plot.stat().st_size > 10_000
    assert "![mask_fast](bench-mask_fast-1MP.png)" in text


def test_a_saved_bench_json_rewrites_the_same_report(tmp_path: Path) -> None:
    md, js = write_results(sample_result(), tmp_path / "first")
    again = BenchResult.from_json(json.loads(js.read_text()))
    assert again == sample_result()
    assert write_results(again, tmp_path / "second")[0].read_text() == md.read_text()
    assert bench.main(["--from-json", str(js), "--out", str(tmp_path / "third")]) == 0
    assert (tmp_path / "third" / "bench-mask_fast-1MP.png").exists()
    assert bench.main(["--from-json", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "old.json").write_text(json.dumps({"machine": "x", "scenarios": []}))
    assert bench.main(["--from-json", str(tmp_path / "old.json"), "--out", str(tmp_path / "fourth")]) == 2


def test_the_committed_document_is_rebuilt_from_the_committed_json() -> None:
    saved = BenchResult.from_json(json.loads((RESULTS / "bench.json").read_text()))
    assert markdown(saved) == (RESULTS / "bench.md").read_text()


def test_a_run_replaces_the_sections_it_measured_keeps_the_others_and_adds_tuning_runs() -> None:
    earlier = sample_result()
    newer = BenchResult(hot_path=HotPath(RUN, 30, [LedgerRow("commit", 0.7, 0.28)], []),
                        tuning=[TuningRun(RUN, {"photo": "0.3MP"})])
    merged = earlier.merged(newer)
    assert merged.hot_path is newer.hot_path
    assert merged.throughput is earlier.throughput and merged.start is earlier.start
    assert [run.measured for run in merged.tuning] == [EARLIER, RUN]


def test_other_photo_sizes_get_one_compact_row(tmp_path: Path) -> None:
    result = sample_result()
    result.throughput.scenarios.append(Scenario("mask_fast", "12MP", points=[
        point(TRITON, 4, 3.0, 1100.0, 1500.0), point(GATEWAY, 4, 2.8, 1200.0, 1600.0),
        point(NAIVE, 4, 2.0, 1500.0, 2000.0)]))
    text = write_results(result, tmp_path)[0].read_text()
    assert "| mask_fast | 12MP | 4 | 3.0 (1100 / 1500) | 2.8 (1200 / 1600) | 2.0 (1500 / 2000) | 1.40x |" in text
    assert "## mask_fast, 12MP JPEG" not in text


def test_nan_percentiles_of_a_failed_point_still_render(tmp_path: Path) -> None:
    result = sample_result()
    result.throughput.scenarios[0].points.append(Point(TRITON, 8, 0.0, [0.0], math.nan, math.nan, math.nan, 0, 5,
                                                       "boom"))
    md, _ = write_results(result, tmp_path)
    assert "| 8 | b. Triton gRPC (asyncio client) | 0.0 | nan | nan | nan | 0 | 5 (boom) |" in md.read_text()
