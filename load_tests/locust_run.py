"""``make load``: the locust mix against a running gateway, with an SLO verdict (``python -m load_tests.locust_run``).

``run`` starts locust headless on ``load_tests/locustfile.py`` (CSV and HTML reports), then checks the SLO;
``check`` gives the verdict on an existing ``*_stats.csv``. Exit status: 0 SLO met, 1 missed, 2 the run failed
(bad arguments or SLO file, no statistics). The API key: ``$IMAGESERVE_API_KEY``, else ``build/dev-api-key``.
The SLO file (``load_tests/slo.toml``) has a ``[total]`` table (locust's "Aggregated" row) and optional
``[endpoints."NAME"]`` tables (request names of the locustfile), each with exactly ``max_error_rate`` (a
fraction), ``p95_ms`` and ``p99_ms``. A threshold exceeded, or an endpoint named there without requests, misses.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from load_tests.traffic_mix import SIZES, check_sizes

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SLO = Path(__file__).with_name("slo.toml")
DEV_KEY_FILE = REPO / "build" / "dev-api-key"
TOTAL_ROW, KEYS = "Aggregated", ("max_error_rate", "p95_ms", "p99_ms")
SLO_MET, SLO_MISSED, RUN_FAILED = 0, 1, 2


class SloConfigError(ValueError):
    """The SLO file is malformed; the message names the file and the key."""


def _thresholds(table: object, where: str) -> dict[str, float]:
    if not isinstance(table, dict) or set(table) != set(KEYS):
        found = set(table) if isinstance(table, dict) else set()
        raise SloConfigError(f"{where}: missing keys {sorted(set(KEYS) - found)}, unknown keys "
                             f"{sorted(found - set(KEYS))}; each table needs exactly {', '.join(KEYS)}")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= (
                1 if key == "max_error_rate" else math.inf):
            raise SloConfigError(f"{where}.{key} = {value!r} must be a number >= 0 (max_error_rate a fraction, "
                                 "0.01 for 1%)")
    return {key: float(value) for key, value in table.items()}


def parse_slo(text: str, source: str = "SLO file") -> dict[str, dict[str, float]]:
    """Row name (``Aggregated`` for the total) -> thresholds."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SloConfigError(f"{source}: not valid TOML: {exc}") from None
    endpoints = data.get("endpoints", {})
    if set(data) - {"total", "endpoints"} or "total" not in data or not isinstance(endpoints, dict):
        raise SloConfigError(f"{source}: needs a [total] table and optional [endpoints.\"NAME\"] tables; "
                             f"unknown tables {sorted(set(data) - {'total', 'endpoints'})}")
    return {TOTAL_ROW: _thresholds(data["total"], f"{source} [total]"),
            **{name: _thresholds(table, f"{source} [endpoints.\"{name}\"]") for name, table in endpoints.items()}}


def load_slo(path: Path) -> dict[str, dict[str, float]]:
    try:
        return parse_slo(path.read_text(), str(path))
    except OSError as exc:
        raise SloConfigError(f"cannot read SLO file {path}: {exc.strerror}") from None


def read_locust_stats(path: Path) -> dict[str, tuple[int, int, float, float]]:
    """Request name -> (requests, failures, p95 ms, p99 ms) from locust's ``PREFIX_stats.csv`` ("N/A" is NaN)."""
    with path.open(newline="") as handle:
        rows = {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"]),
                              *(math.nan if row[q] in ("", "N/A") else float(row[q]) for q in ("95%", "99%")))
                for row in csv.DictReader(handle)}
    if TOTAL_ROW not in rows:
        raise ValueError(f"{path} has no {TOTAL_ROW!r} row: is it locust's *_stats.csv?")
    return rows


def evaluate(slo: dict[str, dict[str, float]], stats: dict[str, tuple[int, int, float, float]]) -> list[str]:
    """Every missed objective, one line each; empty when the run meets its SLO."""
    missed = []
    for name, limit in slo.items():
        label = "total" if name == TOTAL_ROW else name
        requests, failures, p95, p99 = stats.get(name, (0, 0, math.nan, math.nan))
        if not requests:
            missed.append(f"{label}: no requests were made")
            continue
        if failures / requests > limit["max_error_rate"]:
            missed.append(f"{label}: error rate {failures / requests:.2%} ({failures}/{requests}) "
                          f"> {limit['max_error_rate']:.2%}")
        missed += [f"{label}: {q} {value:.0f} ms > {limit[f'{q}_ms']:.0f} ms"
                   for q, value in (("p95", p95), ("p99", p99)) if not value <= limit[f"{q}_ms"]]  # NaN fails too
    return missed


def verdict(stats_csv: Path, slo_path: Path) -> int:
    missed = evaluate(load_slo(slo_path), read_locust_stats(stats_csv))
    print("\n".join(f"SLO missed: {line}" for line in missed) or f"SLO met ({slo_path}); statistics in {stats_csv}")
    return SLO_MISSED if missed else SLO_MET


def run(args: argparse.Namespace) -> int:
    load_slo(args.slo)  # a broken SLO file fails before minutes of load, not after
    key = os.environ.get("IMAGESERVE_API_KEY", "").strip() or (
        DEV_KEY_FILE.read_text().strip() if DEV_KEY_FILE.exists() else "")
    if not key:
        raise ValueError(f"no API key: set IMAGESERVE_API_KEY, or start the stack with `make run` "
                         f"(it writes {DEV_KEY_FILE.relative_to(REPO)})")
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / "locust"
    stats_csv = Path(f"{prefix}_stats.csv")
    stats_csv.unlink(missing_ok=True)
    command = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
               "--host", args.host, "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time",
               args.run_time, "--photo-sizes", args.photo_sizes, "--csv", str(prefix), "--html", f"{prefix}.html",
               "--only-summary", "--stop-timeout", "30", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    result = subprocess.run(command, env={**os.environ, "IMAGESERVE_API_KEY": key, "PYTHONPATH": str(REPO)}, cwd=REPO)
    if result.returncode != 0 or not stats_csv.exists():
        print(f"locust failed (exit {result.returncode}); no statistics in {stats_csv}", file=sys.stderr)
        return RUN_FAILED
    print(f"HTML report: {prefix}.html")
    return verdict(stats_csv, args.slo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load_tests.locust_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run locust headless, then check the SLO")
    run_parser.add_argument("--host", default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}",
                            help="gateway base URL (default: the one `make run` starts)")
    run_parser.add_argument("--users", type=int, default=8, help="concurrent simulated users")
    run_parser.add_argument("--spawn-rate", type=int, default=8, help="users started per second")
    run_parser.add_argument("--run-time", default="60s", help="e.g. 30s, 5m")
    run_parser.add_argument("--photo-sizes", default=",".join(SIZES), help=f"a subset of {','.join(SIZES)}")
    run_parser.add_argument("--out", type=Path, default=REPO / "build" / "locust", help="folder for CSV and HTML")
    check_parser = commands.add_parser("check", help="check an existing locust *_stats.csv against the SLO")
    check_parser.add_argument("stats_csv", type=Path, help="locust's PREFIX_stats.csv")
    for sub in (run_parser, check_parser):
        sub.add_argument("--slo", type=Path, default=DEFAULT_SLO, help="SLO thresholds (TOML)")
    args = parser.parse_args(argv)
    if args.command == "run":
        if min(args.users, args.spawn_rate) < 1:
            parser.error("--users and --spawn-rate must be at least 1")
        if not re.fullmatch(r"(?=.)(\d+h)?(\d+m)?(\d+s)?", args.run_time):
            parser.error(f"--run-time {args.run_time!r} is not a duration like 30s, 2m or 1h30m")
        try:
            check_sizes(args.photo_sizes.split(","))
        except ValueError as exc:
            parser.error(f"--photo-sizes: {exc}")
    try:
        return run(args) if args.command == "run" else verdict(args.stats_csv, args.slo)
    except (ValueError, OSError) as exc:  # SloConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
