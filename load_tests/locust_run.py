"""Headless locust run with an SLO verdict: ``python -m load_tests.locust_run run|check``.

``run`` starts locust headless on ``load_tests/locustfile.py`` against a
running gateway, writes its CSV and HTML reports, then checks the statistics
against the SLO file. ``check`` gives the verdict on an existing
``*_stats.csv``. Exit status: 0 SLO met, 1 SLO missed, 2 the run itself failed
(bad arguments, locust crashed, no statistics written).

The API key comes from ``$IMAGESERVE_API_KEY``, else from ``build/dev-api-key``
(what ``make run`` creates); it never appears on a command line.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from load_tests.arguments import positive_int
from load_tests.photos import SIZES, check_sizes
from load_tests.slo import evaluate, load_slo, read_locust_stats

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_SLO = Path(__file__).with_name("slo.toml")
DEFAULT_OUT = REPO / "build" / "locust"  # per-run reports (the HTML is ~1 MB); reference runs go to results/
DEV_KEY_FILE = REPO / "build" / "dev-api-key"
RUN_TIME = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")
SLO_MET, SLO_MISSED, RUN_FAILED = 0, 1, 2


def api_key() -> str:
    key = os.environ.get("IMAGESERVE_API_KEY", "").strip()
    if not key and DEV_KEY_FILE.exists():
        key = DEV_KEY_FILE.read_text().strip()
    if not key:
        raise ValueError(f"no API key: set IMAGESERVE_API_KEY, or start the stack with `make run` "
                         f"(it writes {DEV_KEY_FILE.relative_to(REPO)})")
    return key


def _run_time(value: str) -> str:
    if not value or not RUN_TIME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 30s, 2m or 1h30m")
    return value


def _sizes(value: str) -> str:
    try:
        return ",".join(check_sizes([s.strip() for s in value.split(",") if s.strip()]))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def locust_command(host: str, users: int, spawn_rate: int, run_time: str, sizes: str, prefix: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", run_time,
        "--photo-sizes", sizes, "--csv", str(prefix), "--html", f"{prefix}.html", "--only-summary",
        "--stop-timeout", "30", "--exit-code-on-error", "0", "--loglevel", "WARNING",
    ]


def verdict(stats_csv: Path, slo_path: Path) -> int:
    """Print each missed objective; SLO_MET or SLO_MISSED."""
    missed = evaluate(load_slo(slo_path), read_locust_stats(stats_csv))
    for line in missed:
        print(f"SLO missed: {line}")
    if not missed:
        print(f"SLO met ({slo_path}); statistics in {stats_csv}")
    return SLO_MISSED if missed else SLO_MET


def run(args: argparse.Namespace) -> int:
    load_slo(args.slo)  # a broken SLO file fails before minutes of load, not after
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / "locust"
    stats_csv = Path(f"{prefix}_stats.csv")
    stats_csv.unlink(missing_ok=True)
    env = {**os.environ, "IMAGESERVE_API_KEY": api_key(), "PYTHONPATH": str(REPO)}
    command = locust_command(args.host, args.users, args.spawn_rate, args.run_time, args.photo_sizes, prefix)
    result = subprocess.run(command, env=env, cwd=REPO)
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
    run_parser.add_argument("--users", type=positive_int, default=8, help="concurrent simulated users")
    run_parser.add_argument("--spawn-rate", type=positive_int, default=8, help="users started per second")
    run_parser.add_argument("--run-time", type=_run_time, default="60s", help="e.g. 30s, 5m")
    run_parser.add_argument("--photo-sizes", type=_sizes, default=",".join(SIZES),
                            help=f"comma-separated subset of {', '.join(SIZES)}")
    run_parser.add_argument("--slo", type=Path, default=DEFAULT_SLO, help="SLO thresholds (TOML)")
    run_parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for CSV and HTML reports")
    check_parser = commands.add_parser("check", help="check an existing locust *_stats.csv against the SLO")
    check_parser.add_argument("stats_csv", type=Path, help="locust's PREFIX_stats.csv")
    check_parser.add_argument("--slo", type=Path, default=DEFAULT_SLO, help="SLO thresholds (TOML)")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args)
        return verdict(args.stats_csv, args.slo)
    except (ValueError, OSError) as exc:  # SloConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
