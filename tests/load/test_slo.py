"""SLO thresholds: parsing, the verdict on locust's statistics, and the runner's exit status."""

from pathlib import Path

import pytest

from load_tests.locust_run import (
    DEFAULT_SLO,
    RUN_FAILED,
    SLO_MET,
    SLO_MISSED,
    TOTAL_ROW,
    SloConfigError,
    evaluate,
    load_slo,
    main,
    parse_slo,
    read_locust_stats,
)
from load_tests.operations import OPERATIONS
from load_tests.traffic_mix import OPERATION_WEIGHTS

HEADER = ('"Type","Name","Request Count","Failure Count","Median Response Time","Average Response Time",'
          '"Min Response Time","Max Response Time","Average Content Size","Requests/s","Failures/s",'
          '"50%","66%","75%","80%","90%","95%","98%","99%","99.9%","99.99%","100%"')
SLO = """
[total]
max_error_rate = 0.01
p95_ms = 500
p99_ms = 900

[endpoints."/v1/depth"]
max_error_rate = 0.0
p95_ms = 300
p99_ms = 600
"""


def stats_csv(path: Path, rows: list[tuple[str, int, int, str, str]]) -> Path:
    lines = [HEADER]
    for name, requests, failures, p95, p99 in rows:
        kind = "" if name == "Aggregated" else "POST"
        lines.append(f'"{kind}","{name}",{requests},{failures},100,120,10,999,1000,5.0,0.0,'
                     f'100,110,120,130,140,{p95},150,{p99},160,170,180')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_parse_reads_total_and_endpoint_thresholds() -> None:
    assert parse_slo(SLO) == {"Aggregated": {"max_error_rate": 0.01, "p95_ms": 500, "p99_ms": 900},
                              "/v1/depth": {"max_error_rate": 0.0, "p95_ms": 300, "p99_ms": 600}}


@pytest.mark.parametrize("text, message", [
    ("[total]\nmax_error_rate = 0.01\np95_ms = 5", "missing keys ['p99_ms']"),
    ("[total]\nmax_error_rate = 5\np95_ms = 5\np99_ms = 9", "max_error_rate = 5 must be a number >= 0"),
    ("[total]\nmax_error_rate = 0.1\np95_ms = -1\np99_ms = 9", "p95_ms = -1 must be a number >= 0"),
    ("[totals]\nmax_error_rate = 0.1", "needs a [total] table"),
    ("[total\n", "not valid TOML"),
])
def test_parse_rejects_malformed_files_with_a_message(text: str, message: str) -> None:
    with pytest.raises(SloConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_slo(text)


def test_the_verdict_reports_each_missed_threshold_and_silent_endpoints() -> None:
    assert evaluate(parse_slo(SLO), {"Aggregated": (1000, 5, 450, 850), "/v1/depth": (300, 0, 250, 590)}) == []
    assert evaluate(parse_slo(SLO), {"Aggregated": (100, 2, 501, 900), "/v1/depth": (50, 1, 300, 601)}) == [
        "total: error rate 2.00% (2/100) > 1.00%", "total: p95 501 ms > 500 ms",
        "/v1/depth: error rate 2.00% (1/50) > 0.00%", "/v1/depth: p99 601 ms > 600 ms"]
    assert evaluate(parse_slo(SLO), {"Aggregated": (10, 0, 100, 100)}) == ["/v1/depth: no requests were made"]


def test_locust_csv_is_read_including_na_percentiles(tmp_path: Path) -> None:
    path = stats_csv(tmp_path / "run_stats.csv",
                     [("/v1/depth", 0, 0, "N/A", "N/A"), ("Aggregated", 40, 1, "320", "700")])
    stats = read_locust_stats(path)
    assert stats["Aggregated"] == (40, 1, 320.0, 700.0)
    assert stats["/v1/depth"][0] == 0
    slo = tmp_path / "slo.toml"
    slo.write_text(SLO)
    assert evaluate(load_slo(slo), stats) == ["total: error rate 2.50% (1/40) > 1.00%",
                                              "/v1/depth: no requests were made"]


def test_check_command_exit_status_follows_the_verdict(tmp_path: Path, capsys) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text(SLO)
    passing = stats_csv(tmp_path / "ok_stats.csv",
                        [("/v1/depth", 30, 0, "200", "400"), ("Aggregated", 30, 0, "200", "400")])
    failing = stats_csv(tmp_path / "bad_stats.csv", [("/v1/depth", 30, 0, "2000", "4000"),
                                                     ("Aggregated", 30, 0, "2000", "4000")])
    assert main(["check", str(passing), "--slo", str(slo)]) == SLO_MET
    assert main(["check", str(failing), "--slo", str(slo)]) == SLO_MISSED
    assert "SLO missed: /v1/depth: p95 2000 ms > 300 ms" in capsys.readouterr().out
    slo.write_text("[total]\n")
    assert main(["check", str(passing), "--slo", str(slo)]) == RUN_FAILED


@pytest.mark.parametrize("argv, message", [
    (["run", "--users", "0"], "must be at least 1"),
    (["run", "--spawn-rate", "x"], "invalid int value"),
    (["run", "--run-time", "ten"], "not a duration"),
    (["run", "--photo-sizes", "5MP"], "unknown photo size"),
    (["launch"], "invalid choice"),
])
def test_runner_rejects_bad_arguments(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_committed_slo_names_only_endpoints_the_mix_sends() -> None:
    named = set(load_slo(DEFAULT_SLO)) - {TOTAL_ROW}
    assert named and named <= {OPERATIONS[name].http_path for name in OPERATION_WEIGHTS}
