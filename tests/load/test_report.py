"""The results document: generic sections rendered by one table writer, the committed bench.md rebuilt from the
committed bench.json, sections replaced or kept, and the arithmetic of the section builders on made-up numbers."""

import json
import math
from pathlib import Path

import pytest

from load_tests import bench, report, tuning
from load_tests.bench import GATEWAY, NAIVE, TRITON
from load_tests.closed_loop import percentiles_ms
from load_tests.offline import hot_path_section
from tests.conftest import REPO

RESULTS = REPO / "load_tests" / "results"
RUN = {"at": "2026-01-01 10:00 UTC", "command": "python -m load_tests.bench", "machine": "2 cores", "note": ""}
EARLIER = {"at": "2025-12-01", "command": "python -m load_tests.bench --sections tuning", "machine": "",
           "note": "an older baseline"}


def test_the_committed_document_is_rebuilt_from_the_committed_json(tmp_path: Path) -> None:
    sections = report.load(RESULTS / "bench.json")
    assert report.markdown(sections) == (RESULTS / "bench.md").read_text()
    assert bench.main(["--from-json", str(RESULTS / "bench.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "bench.md").read_text() == (RESULTS / "bench.md").read_text()
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads((RESULTS / "bench.json").read_text())


def test_cells_take_the_first_format_whose_fields_are_all_there() -> None:
    columns = [["a", "{x:.1f}"], ["b", ["{n} ({why})", "{n}"]], ["c", ["{d[load generator]:.2f}", ""]],
               ["d", "{p[1][v]:.0f}"]]
    rows = [{"x": 1.25, "n": 2, "why": "boom", "d": {"load generator": 0.5}, "p": [{}, {"v": 7.4}]},
            {"x": math.nan, "n": 0, "why": "", "d": {}, "p": [{}]}]
    assert report.table(columns, rows) == ["| a | b | c | d |", "|---|---|---|---|", "| 1.2 | 2 (boom) | 0.50 | 7 |",
                                           "| nan | 0 | | n/a |", ""]


def test_bad_or_old_bench_json_is_refused(tmp_path: Path) -> None:
    assert bench.main(["--from-json", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "old.json").write_text(json.dumps({"throughput": {}, "tuning": []}))
    assert bench.main(["--from-json", str(tmp_path / "old.json"), "--out", str(tmp_path)]) == 2
    (tmp_path / "odd.json").write_text(json.dumps({"sections": [{"key": "spine", "title": "x"}]}))
    with pytest.raises(ValueError, match="spine"):
        report.load(tmp_path / "odd.json")


def test_a_run_replaces_the_sections_it_measured_keeps_the_others_and_adds_tuning_runs() -> None:
    old = [report.section(key, key, EARLIER, []) for key in ("throughput", "hot_path", "tuning")]
    new = [report.section(key, key, RUN, []) for key in ("tuning", "hot_path", "latency")]
    merged = report.merged(old, new)
    assert [(s["key"], s["measured"]["at"]) for s in merged] == [
        ("throughput", "2025-12-01"), ("latency", RUN["at"]), ("hot_path", RUN["at"]), ("tuning", "2025-12-01"),
        ("tuning", RUN["at"])]


def point(target: str, concurrency: int, throughput: float, p50: float, p95: float, errors: int = 0) -> dict:
    return {"target": target, "concurrency": concurrency, "throughput": throughput, "p50_ms": p50, "p95_ms": p95,
            "p99_ms": p95 * 1.2, "requests": 100, "errors": errors, "first_error": "boom" if errors else ""}


def usage(cores: dict, ms: dict) -> dict:
    return {"cores": cores, "cpu_ms_per_request": ms, "peak_rss_mib": {name: 100.0 * c for name, c in cores.items()},
            "other_cores": 0.05}


def throughput() -> dict:
    main = {"operation": "op", "model": "m", "photo": "1MP", "repeats": 3, "points": [
        point(TRITON, 1, 20.0, 40.0, 50.0), point(GATEWAY, 1, 18.0, 42.5, 55.0), point(NAIVE, 1, 19.0, 45.0, 60.0),
        point(TRITON, 4, 30.0, 120.0, 150.0), point(GATEWAY, 4, 27.0, 140.0, 170.0),
        point(NAIVE, 4, 15.0, 250.0, 400.0, errors=2)],
        "usage": {GATEWAY: usage({"triton": 1.5, "gateway": 0.3, "naive": 0.001}, {"triton": 50.0, "gateway": 10.0,
                                                                                   "naive": 0.01})}}
    other = {"operation": "op", "model": "m", "photo": "12MP", "repeats": 1, "usage": {}, "points": [
        point(TRITON, 4, 3.0, 1100.0, 1500.0), point(NAIVE, 4, 2.0, 1500.0, 2000.0)]}
    limits = [{"model": "m", "layout": "1 x 2", "b1": 100.0, "b8": 90.0},
              {"model": "m", "layout": "2 x 1", "b1": 120.0}]
    settings = {"photo": "1MP", "concurrency": {"op": [1, 4]}, "repeats": 3, "duration_s": 3.0, "warmup_s": 0.5}
    return bench.throughput_section(RUN, settings, {"model_instances": 2}, limits, [main, other],
                                    0.05)


def test_throughput_section_saturation_ratios_and_usage() -> None:
    text = report.markdown([throughput()])
    for row in ("| model | layout | batch 1 | batch 8 |", "| m | 1 x 2 | 100.0 | 90.0 |", "| m | 2 x 1 | 120.0 | n/a |",
                "| m | 120.0 | 2 x 1, batch 1 | 8.3 |",
                "| 4 | d. naive FastAPI | 15.0 | 250.0 | 400.0 | 480.0 | 100 | 2 (boom) |",
                "| a. model's own limit (m) | 120.0 | batch 1 | |", "| d. naive FastAPI | 19.0 | 1 | 60 |",
                "c/a = 0.23 (22%), c/b = 0.90 (90%), c/d = 1.42x", "concurrency 1: 2.5 ms.", "![op](bench-op-1MP.png)",
                "## op, 12MP JPEG: b. Triton direct", "| 4 | b. Triton gRPC (asyncio client) | 3.0 | 1100.0 | 1500.0 |",
                "c/a = n/a, c/b = n/a, c/d = n/a. Gateway p50 overhead over Triton direct at concurrency 1: n/a.",
                "| op 1MP | c. gateway HTTP | 1.50 (50.0 ms) | 0.30 (10.0 ms) | 0.00 | n/a | 0.05 |",
                "| triton | 150 |", "Triton CPU tuning `{'model_instances': 2}`", "0.05 cores on average"):
        assert row in text, row
    assert "reached" not in text and "![op](bench-op-12MP.png)" not in text  # no old verdicts; one concurrency


def test_start_hot_path_and_tuning_sections_render_their_rows(monkeypatch) -> None:
    compared = []

    def compare(name, operations, photo, concurrencies, repeats, duration_s) -> list[dict]:
        compared.append((name, [op.name for op in operations], photo, concurrencies, repeats, duration_s))
        return [{"variant": name, "change": tuning.VARIANTS[name][0], "operation": "depth", "concurrency": 4,
                 "baseline_rps": 26.0, "variant_rps": 26.4, "throughput_change": 0.0154, "baseline_p50_ms": 155.0,
                 "variant_p50_ms": 154.0}]

    monkeypatch.setattr(tuning, "compare", compare)
    operations = bench.default_operations()
    sections = [
        bench.start_section(RUN, "make -s run", [6.0, 7.0, 8.0], {"op": [90.0]}, {"op": [40.0, 45.0, 50.0]}),
        bench.first_start_section(RUN, "python -m stack", [8.04]),
        hot_path_section(RUN, 300, [{"step": "reserve", "orm_ms": 1.2, "prebuilt_ms": 0.3}],
                         [{"output": "mask", "default_ms": 7.3, "default_kib": 66.2, "rle_ms": 7.5, "rle_kib": 49.6}]),
        tuning.measure(EARLIER, 1, ["no_batch_delay"], operations[:1], "1MP", [4], 3, 2.5),
        tuning.measure(RUN, 2, ["two_threads_spinning", "no_batch_delay"], operations[:1], "1MP", [4], 3, 2.5)]
    assert [c[0] for c in compared] == ["no_batch_delay", "two_threads_spinning", "no_batch_delay"]
    text = report.markdown(sections)
    for row in ("median 7.0 s (runs: 6.0, 7.0, 8.0)", "| op | 90 | 45 | 2.00 |",
                "no converted models (download, verify, convert, then start): 8.0 s to ready",
                "Medians of 300 calls (PNG: 30).", "| reserve | 1.200 | 0.300 | 0.25 |",
                "| mask | 7.3 | 66 | 7.5 | 50 |",
                "| no_batch_delay | batch_delay_us 2000 -> 0 | depth | 4 | 26.0 | 26.4 | +2% | 155 | 154 |",
                "`python -m load_tests.bench --sections tuning`; settings {'photo': '1MP', 'concurrency': [4], "
                "'repeats': 3, 'duration_s': 2.5}.", "- tuning run 1: an older baseline.",
                "| tuning run 1 | 2025-12-01 | `python -m load_tests.bench --sections tuning` |", "Machine: 2 cores.",
                "Machine not recorded for: tuning run 1.", "### Tuning run 2: 2026-01-01 10:00 UTC"):
        assert row in text, row
    assert text.count("## Tuning runs:") == 1 and text.count("| no_batch_delay |") == 2


def test_percentiles_interpolate_like_numpy_and_an_empty_sample_is_nan() -> None:
    assert percentiles_ms([v / 1e3 for v in range(1, 101)]) == pytest.approx([50.5, 95.05, 99.01])
    assert all(math.isnan(v) for v in percentiles_ms([]))


def test_plots_are_pngs_with_the_model_limit_on_scale_or_named(tmp_path: Path) -> None:
    scenario = {"operation": "op", "photo": "1MP", "points": [point(TRITON, 1, 20.0, 40.0, 50.0),
                                                             point(GATEWAY, 1, 18.0, 42.0, 55.0),
                                                             point(TRITON, 4, 30.0, 120.0, 150.0)]}
    bench.plot_scenario(tmp_path, scenario, {"model": "m", "images_per_s": 40.0})
    bench.plot_scenario(tmp_path, {**scenario, "photo": "3MP"}, {"model": "m", "images_per_s": 400.0})
    bench.plot_scenario(tmp_path, {**scenario, "photo": "12MP", "points": scenario["points"][:1]}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench-op-1MP.png", "bench-op-3MP.png"]  # 12MP: 1 point
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 10_000 for p in tmp_path.iterdir())
