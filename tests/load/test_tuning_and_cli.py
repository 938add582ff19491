"""Tuning variants produce the generator's configs; every CLI refuses bad arguments with a message."""

from pathlib import Path

import pytest

from converters.catalog import load_catalog
from converters.triton_config import repository_configs
from load_tests import bench, hot_path, perf_analyzer
from load_tests.tuning import VARIANTS, variant_configs, variant_repository
from load_tests.tuning import main as tuning_main
from tests.conftest import MODEL_REPOSITORY


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
    configs = variant_configs(VARIANTS["two_threads_no_spin"])
    parameters = configs["segmentation_fast"]["parameters"]
    assert (parameters["intra_op_threads"]["string_value"], parameters["intra_op_spinning"]["string_value"]) == ("2", "0")
    assert variant_configs(VARIANTS["two_threads_spinning"])["depth"]["parameters"]["intra_op_spinning"] == \
        {"string_value": "1"}


@pytest.mark.parametrize("main, argv, message", [
    (bench.main, ["--concurrency", "0,2"], "must be >= 1"),
    (bench.main, ["--operations", "blur"], "unknown operation"),
    (bench.main, ["--duration", "-1"], "must be positive"),
    (bench.main, ["--extra-photos", "1MP"], "repeats the main photo"),
    (perf_analyzer.main, ["--models", "resnet"], "unknown models"),
    (perf_analyzer.main, ["--concurrency", "1,x"], "comma-separated list of integers"),
    (tuning_main, ["--variants", "turbo"], "unknown variants"),
    (hot_path.main, ["--repeats", "0"], "must be at least 1"),
])
def test_clis_refuse_bad_arguments(main, argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_quick_bench_writes_outside_the_committed_results() -> None:
    args = bench.parse_args(["--quick"])
    assert args.out == bench.QUICK_RESULTS and Path("load_tests/results") not in (args.out, args.out.parent)
    assert (args.concurrency_by_operation, args.repeats) == ({"mask_fast": [1, 4]}, 1)
    full = bench.parse_args([])
    assert full.concurrency_by_operation == {"mask_fast": [1, 2, 4, 8], "depth": [1, 2, 4, 8], "mask_quality": [1, 2, 4]}


def test_hot_path_writes_both_ways_of_each_cost(tmp_path: Path) -> None:
    out = tmp_path / "hot-path.md"
    assert hot_path.main(["--repeats", "3", "--out", str(out)]) == 0
    text = out.read_text()
    for row in ("| reserve |", "| commit |", "| mask |", "| depth (16-bit) |", "| cutout (RGBA) |"):
        assert row in text, row
    assert "cores" in text and "Python" in text  # the machine is described
