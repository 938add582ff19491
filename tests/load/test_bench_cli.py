"""The bench command: its arguments, the sections it measures and keeps, the tuning variants, and the helpers
it shares with the stack (models set aside for a first start, the one process-stop helper)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from contract.product import PRODUCT
from converters.catalog import load_catalog
from converters.triton_config import fed_by_decode, repository_configs
from load_tests import bench, report
from load_tests.closed_loop import RunResult
from load_tests.operations import OPERATIONS
from load_tests.services import HttpService, ProcessMonitor, models_set_aside
from load_tests.tuning import EXPERIMENTS, variant_configs, variant_repository
from stack.processes import stop_process
from tests.conftest import MODEL_REPOSITORY
from tests.load.test_checks_and_load import FakeTarget
from tests.load.test_report import EARLIER, RUN

# The served models an ensemble runs (not the pixel models, nor the face networks a step calls): the load mix's.
MODELS = [name for name in PRODUCT.models() if fed_by_decode(load_catalog()[name])]


def test_the_baseline_is_the_generated_repository_and_a_variant_changes_only_what_it_says() -> None:
    configs, baseline = variant_configs("previous_threads"), repository_configs(load_catalog(), "cpu")
    assert variant_configs("baseline") == baseline
    assert {name for name in configs if configs[name] != baseline[name]} == set(MODELS)
    assert configs[MODELS[0]]["instance_group"][0]["count"] == 1
    assert configs[MODELS[0]]["parameters"]["intra_op_threads"]["string_value"] == "2"
    assert variant_configs("long_delay_preferred_4")[MODELS[0]]["dynamic_batching"] == {
        "max_queue_delay_microseconds": 10_000, "preferred_batch_size": [4]}
    parameters = variant_configs("two_threads_no_spin")[MODELS[-1]]["parameters"]
    assert (parameters["intra_op_threads"]["string_value"], parameters["intra_op_spinning"]["string_value"]) == \
        ("2", "0")
    assert variant_configs("three_pre_post")["preprocess"]["instance_group"][0]["count"] == 3


def test_variant_repository_writes_configs_and_links_the_models() -> None:
    ensemble = next(iter(OPERATIONS.values())).ensemble
    with variant_repository("long_delay_preferred_4") as root:
        config = (root / MODELS[0] / "config.pbtxt").read_text()
        assert "max_queue_delay_microseconds: 10000" in config and "preferred_batch_size: 4" in config
        onnx = root / MODELS[0] / "1" / "model.onnx"
        assert onnx.resolve() == (MODEL_REPOSITORY / MODELS[0] / "1" / "model.onnx").resolve()
        assert (root / ensemble / "1").is_dir()
    assert not root.exists()


@pytest.mark.parametrize("argv, message", [
    (["--concurrency", "0,2"], "must be >= 1"),
    (["--concurrency", "1,x"], "give integers"),
    (["--operations", "blur"], "unknown operation"),
    (["--duration", "-1"], "must be positive"),
    (["--extra-photos", "1MP"], "repeats the main photo"),
    (["--sections", "spine"], "choose from throughput, latency"),
    (["--variants", "turbo"], f"choose from {EXPERIMENTS[0]}"),
    (["--repeats", "0"], "must be positive"),
])
def test_bench_refuses_bad_arguments(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults_one_operation_per_model_and_quick_runs_write_outside_the_results() -> None:
    full = bench.parse_args([])
    assert [op.model for op in full.operations] == MODELS  # every model, by the first fixed variant that uses it
    assert not any(op.by_faces for op in full.operations) and any(op.by_faces for op in OPERATIONS.values())
    assert full.sections == ["throughput", "latency", "edits", "peer", "decoding", "start", "first_start", "hot_path"]
    assert full.extra_photos == ["0.3MP", "3MP", "12MP"] and not full.operations_given
    quick = bench.parse_args(["--quick"])
    assert quick.out == bench.QUICK_RESULTS and "first_start" not in quick.sections  # a smoke run downloads nothing
    assert quick.operations == full.operations[:1] and quick.extra_photos == []
    assert bench.parse_args(["--sections", "tuning,decoding"]).sections == ["decoding", "tuning"]


class FakeServed(bench.Served):
    """Records the loads it is asked for, each answering 12 requests of 0.5 s, fastest model given."""

    def __init__(self, args) -> None:
        super().__init__(args, None, "127.0.0.1:2", HttpService(1, 0, "key"), HttpService(3, 0))
        self.calls = []

    def scenario(self, operation, photo, concurrencies, repeats) -> dict:
        self.calls.append((operation.name, photo, concurrencies, repeats))
        runs = [RunResult(c, window_s=1.0, latencies_s=[0.5] * 12) for c in concurrencies]
        return {"operation": operation.name, "model": operation.model, "photo": photo, "repeats": repeats,
                "points": [self.point(t, r.concurrency, [r]) for r in runs for t in (bench.TRITON, bench.GATEWAY)],
                "usage": {}}


def test_a_scenario_loads_every_target_at_every_concurrency_and_measures_their_processes(monkeypatch) -> None:
    targets = {bench.TRITON: FakeTarget(0.005), bench.GATEWAY: FakeTarget(0.005, fail_every=3)}
    monkeypatch.setattr(bench.Served, "targets", lambda self, operation, photo: targets)
    with ProcessMonitor(interval_s=0.02) as monitor:
        monitor.watch("load generator", os.getpid(), with_children=False)
        served = bench.Served(bench.parse_args(["--duration", "0.1", "--warmup", "0"]), monitor, "", None, None)
        scenario = served.scenario(next(iter(OPERATIONS.values())), "1MP", [1, 2], repeats=2)
    assert [(p["target"], p["concurrency"], len(p["throughputs"])) for p in scenario["points"]] == [
        (bench.TRITON, 1, 2), (bench.GATEWAY, 1, 2), (bench.TRITON, 2, 2), (bench.GATEWAY, 2, 2)]
    assert served.errors == sum(p["errors"] for p in scenario["points"]) > 0 and len(monitor.phases) == 8
    usage = scenario["usage"][bench.TRITON]
    assert usage["cores"]["load generator"] > 0 and usage["peak_rss_mib"]["load generator"] > 50
    assert usage["cpu_ms_per_request"]["load generator"] > 0


def test_throughput_runs_the_fastest_model_first_and_slow_models_up_to_4_in_flight(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(bench, "plot_scenario", lambda *args: None)
    args = bench.parse_args(["--out", str(tmp_path)])
    served = FakeServed(args)
    served.monitor = type("Monitor", (), {"phases": [type("Phase", (), {"machine_busy_s": 1.0, "cpu_s": {},
                                                                        "wall_s": 2.0})()]})()
    limits = [{"model": model, "layout": "l", "b1": 100.0 * (i + 1)} for i, model in enumerate(MODELS)]
    limits[0]["b1"] = 5.0  # under SLOW_IMAGES_PER_S
    section = served.throughput(RUN, limits)
    fastest, slow = args.operations[-1].name, args.operations[0].name
    assert served.calls[0] == (fastest, "1MP", [1, 2, 4, 8], 3)
    assert (slow, "1MP", [1, 2, 4], 3) in served.calls
    assert served.calls[-3:] == [(fastest, photo, [4], 1) for photo in ("0.3MP", "3MP", "12MP")]
    assert section["data"]["settings"]["operations"][0] == fastest and section["data"]["other_load_cores"] == 0.5
    assert served.reusable[fastest, "1MP"]["target"] == bench.GATEWAY  # the latency section takes it from here


def test_latency_reuses_concurrency_1_points_and_measures_the_rest(monkeypatch) -> None:
    calls = []

    async def fake_loop(target, concurrency, duration_s, warmup_s, min_rounds=4) -> RunResult:
        calls.append((target.operation.name, target.port, concurrency, min_rounds))
        return RunResult(concurrency, window_s=1.0, latencies_s=[0.5] * 12)

    monkeypatch.setattr(bench, "run_closed_loop", fake_loop)
    served = FakeServed(bench.parse_args([]))
    reused = next(iter(OPERATIONS.values()))
    served.reusable = {(reused.name, "1MP"): {"p50_ms": 33.4, "p95_ms": 36.0, "requests": 9, "errors": 2,
                                              "first_error": "HTTP 503"}}
    section = served.latency(RUN, ["1MP", "0.3MP"])
    rows = section["parts"][0]["rows"]
    assert f"| `{reused.http_path}` | 1MP JPEG | 33 | 36 | 9, 2 failed (HTTP 503) |" in report.markdown([section])
    assert [(r["endpoint"], r["photo"]) for r in rows] == [(op.http_path, photo) for photo in ("1MP", "0.3MP")
                                                           for op in OPERATIONS.values()]
    assert rows[0]["p50_ms"] == 33.4 and rows[1]["p50_ms"] == 500.0 and rows[1]["requests"] == 12
    assert len(calls) == 2 * len(OPERATIONS) - 1
    assert {c[1:] for c in calls} == {(1, 1, bench.LATENCY_ROUNDS)}  # the gateway, one at a time


def test_a_run_of_one_section_keeps_the_others_of_bench_json(tmp_path: Path) -> None:
    kept = [report.section("tuning", "tuning run 1", EARLIER, [{"text": ["kept"]}])]
    report.write(kept, tmp_path)
    assert bench.main(["--quick", "--sections", "hot_path", "--out", str(tmp_path)]) == 0
    saved = report.load(tmp_path / "bench.json")
    assert [s["key"] for s in saved] == ["hot_path", "tuning"] and saved[1] == kept[0]
    hot = saved[0]
    assert hot["measured"]["command"] == f"python -m load_tests.bench --quick --sections hot_path --out {tmp_path}"
    ledger, png = (part["rows"] for part in hot["parts"])
    assert [row["step"] for row in ledger] == ["reserve", "commit"]
    assert all(row["orm_ms"] > 0 and row["prebuilt_ms"] > 0 for row in ledger)
    assert len(png) == 3 and all(row["rle_kib"] > 0 and row["default_ms"] > 0 for row in png)
    assert "| cutout (8-bit RGBA) |" in (tmp_path / "bench.md").read_text()


def test_models_set_aside_are_put_back_unless_rebuilt(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.onnx").write_bytes(b"original " + name.encode())
    with models_set_aside(tmp_path):
        assert not list(tmp_path.glob("*/1/model.onnx"))
        (tmp_path / "a" / "1" / "model.onnx").write_bytes(b"rebuilt")
    assert (tmp_path / "a" / "1" / "model.onnx").read_bytes() == b"rebuilt"
    assert (tmp_path / "b" / "1" / "model.onnx").read_bytes() == b"original b"
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
