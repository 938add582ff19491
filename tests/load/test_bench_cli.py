"""The bench command: its arguments, the sections it measures and keeps, the tuning variants, and the helpers
it shares with the stack (models set aside for a first start, the one process-stop helper)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from converters.catalog import load_catalog
from converters.triton_config import repository_configs
from load_tests import bench
from load_tests.closed_loop import RunResult
from load_tests.cold_start import models_set_aside
from load_tests.report import write_results
from load_tests.results import GATEWAY, BenchResult, Provenance, SequentialRow
from load_tests.services import HttpService
from load_tests.tuning import VARIANTS, variant_configs, variant_repository
from stack.processes import stop_process
from tests.conftest import MODEL_REPOSITORY
from tests.load.test_results import sample_result, throughput_section


def test_baseline_variant_is_exactly_the_generated_repository() -> None:
    assert variant_configs(VARIANTS["baseline"]) == repository_configs(load_catalog(), "cpu")


def test_a_variant_changes_only_what_it_says() -> None:
    configs = variant_configs(VARIANTS["previous_threads"])
    baseline = repository_configs(load_catalog(), "cpu")
    changed = {name for name in configs if configs[name] != baseline[name]}
    assert changed == set(load_catalog())
    assert configs["depth"]["instance_group"][0]["count"] == 1
    assert configs["depth"]["parameters"]["intra_op_threads"]["string_value"] == "2"
    delayed = variant_configs(VARIANTS["long_delay_preferred_4"])["segmentation_fast"]["dynamic_batching"]
    assert delayed == {"max_queue_delay_microseconds": 10_000, "preferred_batch_size": [4]}


def test_variant_repository_writes_configs_and_links_the_models() -> None:
    with variant_repository(VARIANTS["long_delay_preferred_4"]) as root:
        config = (root / "depth" / "config.pbtxt").read_text()
        assert "max_queue_delay_microseconds: 10000" in config and "preferred_batch_size: 4" in config
        onnx = root / "depth" / "1" / "model.onnx"
        assert onnx.resolve() == (MODEL_REPOSITORY / "depth" / "1" / "model.onnx").resolve()
        assert (root / "photo_depth" / "1").is_dir()
    assert not root.exists()


def test_spinning_variants_set_the_onnx_step_parameter() -> None:
    parameters = variant_configs(VARIANTS["two_threads_no_spin"])["segmentation_fast"]["parameters"]
    assert (parameters["intra_op_threads"]["string_value"], parameters["intra_op_spinning"]["string_value"]) == \
        ("2", "0")
    assert variant_configs(VARIANTS["two_threads_spinning"])["depth"]["parameters"]["intra_op_spinning"] == \
        {"string_value": "1"}


@pytest.mark.parametrize("argv, message", [
    (["--concurrency", "0,2"], "must be >= 1"),
    (["--concurrency", "1,x"], "give integers"),
    (["--operations", "blur"], "unknown operation"),
    (["--duration", "-1"], "must be positive"),
    (["--extra-photos", "1MP"], "repeats the main photo"),
    (["--sections", "spine"], "choose from throughput, latency"),
    (["--variants", "turbo"], "choose from previous_threads"),
    (["--repeats", "0"], "must be at least 1"),
])
def test_bench_refuses_bad_arguments(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_quick_bench_writes_outside_the_committed_results() -> None:
    args = bench.parse_args(["--quick"])
    assert args.out == bench.QUICK_RESULTS and Path("load_tests/results") not in (args.out, args.out.parent)
    assert args.concurrency_by_operation == {"mask_fast": [1, 4]} and args.extra_photos == []
    assert "first_start" not in args.sections  # a smoke run downloads nothing
    full = bench.parse_args([])
    assert full.concurrency_by_operation == {"mask_fast": [1, 2, 4, 8], "depth": [1, 2, 4, 8],
                                             "mask_quality": [1, 2, 4]}
    assert full.sections == ["throughput", "latency", "decoding", "start", "first_start", "hot_path"]
    assert bench.parse_args(["--sections", "tuning,decoding"]).sections == ["decoding", "tuning"]


def test_a_run_of_one_section_keeps_the_others_of_bench_json(tmp_path: Path) -> None:
    write_results(sample_result(), tmp_path)
    assert bench.main(["--quick", "--sections", "hot_path", "--out", str(tmp_path)]) == 0
    saved = BenchResult.from_json(json.loads((tmp_path / "bench.json").read_text()))
    assert (saved.throughput, saved.start, saved.tuning) == (sample_result().throughput, sample_result().start,
                                                             sample_result().tuning)
    hot = saved.hot_path
    assert hot.measured.command == f"python -m load_tests.bench --quick --sections hot_path --out {tmp_path}"
    assert [row.step for row in hot.ledger] == ["reserve", "commit"]
    assert all(row.orm_ms > 0 and row.prebuilt_ms > 0 for row in hot.ledger)
    assert [row.output for row in hot.png] == ["mask", "depth (16-bit)", "cutout (RGBA)"]
    assert all(row.rle_kib > 0 and row.default_ms > 0 for row in hot.png)
    text = (tmp_path / "bench.md").read_text()
    assert "| cutout (RGBA) |" in text and "| 4 | c. gateway HTTP | 27.0 |" in text


def test_latency_reuses_concurrency_1_points_and_measures_the_rest(monkeypatch) -> None:
    calls = []

    async def fake_loop(target, concurrency, duration_s, warmup_s, min_rounds=4) -> RunResult:
        calls.append((target.operation.name, target.port, concurrency, min_rounds))
        return RunResult(concurrency, window_s=1.0, latencies_s=[0.5] * 12)

    monkeypatch.setattr(bench, "run_closed_loop", fake_loop)
    service = HttpService("http://127.0.0.1:1", 1, 0, "key")
    runner = bench.Bench(bench.parse_args([]), None, "127.0.0.1:2", service, HttpService("", 3, 0))
    rows = runner.sequential(Provenance("now", "bench", ""), ["1MP", "0.3MP"], throughput_section()).rows
    assert [(r.operation, r.photo) for r in rows][:5] == [
        ("depth", "1MP"), ("mask_fast", "1MP"), ("mask_quality", "1MP"), ("cutout_fast", "1MP"),
        ("cutout_quality", "1MP")] and len(rows) == 10
    reused = throughput_section().scenarios[0].at(GATEWAY, 1)
    assert rows[1] == SequentialRow("mask_fast", "1MP", reused.p50_ms, reused.p95_ms, reused.requests)
    assert rows[0] == SequentialRow("depth", "1MP", 500.0, 500.0, 12)
    assert len(calls) == 9 and {c[1:] for c in calls} == {(1, 1, bench.LATENCY_ROUNDS)}  # the gateway, one at a time


def test_models_set_aside_are_put_back_unless_rebuilt(tmp_path: Path) -> None:
    for name in ("depth", "segmentation_fast"):
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.onnx").write_bytes(b"original " + name.encode())
    with models_set_aside(tmp_path):
        assert not list(tmp_path.glob("*/1/model.onnx"))
        (tmp_path / "depth" / "1" / "model.onnx").write_bytes(b"rebuilt")
    assert (tmp_path / "depth" / "1" / "model.onnx").read_bytes() == b"rebuilt"
    assert (tmp_path / "segmentation_fast" / "1" / "model.onnx").read_bytes() == b"original segmentation_fast"
    assert sorted(p.name for p in tmp_path.glob("*/1/*")) == ["model.onnx", "model.onnx"]


STUBBORN = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
            "time.sleep(60)\n")


def start(code: str, **kwargs: object) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **kwargs)
    assert process.stdout.readline().strip() == "ready"
    return process


def test_stop_process_kills_what_ignores_the_first_signal() -> None:
    process = start(STUBBORN)
    started = time.monotonic()
    assert stop_process(process, timeout_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert stop_process(process) == -signal.SIGKILL  # already stopped: only reaped again


def test_stop_process_signals_the_whole_group_as_ctrl_c_does() -> None:
    parent = "import subprocess, sys, time\n" \
             f"child = subprocess.Popen([sys.executable, '-c', {STUBBORN.replace('SIGTERM', 'SIGUSR1')!r}])\n" \
             "time.sleep(0.5)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    process = start(parent, start_new_session=True)
    child = psutil.Process(process.pid).children()[0]
    try:
        assert stop_process(process, signal.SIGINT, timeout_s=10, group=True) != 0
        child.wait(timeout=5)  # the child got the SIGINT too, not only its parent
    finally:
        if child.is_running():
            child.kill()
