"""Service-level objectives of a load test, and their verdict on locust's statistics.

Thresholds live in a TOML file (``load_tests/slo.toml``)::

    [total]                          # locust's "Aggregated" row
    max_error_rate = 0.01            # failures / requests
    p95_ms = 4000
    p99_ms = 8000

    [endpoints."/v1/depth"]          # a request name of the locustfile
    max_error_rate = 0.01
    p95_ms = 3000
    p99_ms = 6000

A run misses its SLO when any threshold is exceeded or an endpoint named in
the file got no request at all (a silent scenario is not a passing one).
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

TOTAL_ROW = "Aggregated"
THRESHOLD_KEYS = ("max_error_rate", "p95_ms", "p99_ms")


class SloConfigError(ValueError):
    """The SLO file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Threshold:
    max_error_rate: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class SloConfig:
    total: Threshold
    endpoints: dict[str, Threshold]


@dataclass(frozen=True)
class RowStats:
    """One row of locust's ``*_stats.csv``."""

    name: str
    requests: int
    failures: int
    p95_ms: float
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def _threshold(table: object, where: str) -> Threshold:
    if not isinstance(table, dict):
        raise SloConfigError(f"{where} must be a table with {', '.join(THRESHOLD_KEYS)}")
    missing = [key for key in THRESHOLD_KEYS if key not in table]
    unknown = sorted(set(table) - set(THRESHOLD_KEYS))
    if missing or unknown:
        raise SloConfigError(f"{where}: missing keys {missing}, unknown keys {unknown}; "
                             f"each table needs exactly {', '.join(THRESHOLD_KEYS)}")
    values = {}
    for key in THRESHOLD_KEYS:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SloConfigError(f"{where}.{key} = {value!r} must be a non-negative number")
        values[key] = float(value)
    if values["max_error_rate"] > 1:
        raise SloConfigError(f"{where}.max_error_rate = {values['max_error_rate']} is a fraction: use 0.01 for 1%")
    return Threshold(**values)


def parse_slo(text: str, source: str = "SLO file") -> SloConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SloConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"total", "endpoints"})
    if unknown or "total" not in data:
        raise SloConfigError(f"{source}: needs a [total] table and optional [endpoints.\"NAME\"] tables; "
                             f"unknown tables {unknown}")
    endpoints = data.get("endpoints", {})
    if not isinstance(endpoints, dict):
        raise SloConfigError(f"{source}: endpoints must be tables, e.g. [endpoints.\"/v1/depth\"]")
    return SloConfig(
        total=_threshold(data["total"], f"{source} [total]"),
        endpoints={name: _threshold(table, f"{source} [endpoints.\"{name}\"]") for name, table in endpoints.items()},
    )


def load_slo(path: Path) -> SloConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SloConfigError(f"cannot read SLO file {path}: {exc.strerror}") from None
    return parse_slo(text, str(path))


def _milliseconds(value: str) -> float:
    """Locust writes "N/A" for a percentile of no requests."""
    return math.nan if value in ("", "N/A") else float(value)


def read_locust_stats(path: Path) -> dict[str, RowStats]:
    """Rows of locust's ``PREFIX_stats.csv`` keyed by request name (``Aggregated`` for the total)."""
    rows = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = RowStats(
                name=row["Name"], requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                p95_ms=_milliseconds(row["95%"]), p99_ms=_milliseconds(row["99%"]),
            )
    if TOTAL_ROW not in rows:
        raise ValueError(f"{path} has no {TOTAL_ROW!r} row: is it locust's *_stats.csv?")
    return rows


def _check_row(label: str, row: RowStats | None, threshold: Threshold) -> list[str]:
    if row is None or row.requests == 0:
        return [f"{label}: no requests were made"]
    missed = []
    if row.error_rate > threshold.max_error_rate:
        missed.append(f"{label}: error rate {row.error_rate:.2%} ({row.failures}/{row.requests}) "
                      f"> {threshold.max_error_rate:.2%}")
    for name, measured, limit in (("p95", row.p95_ms, threshold.p95_ms), ("p99", row.p99_ms, threshold.p99_ms)):
        if not measured <= limit:  # NaN fails too
            missed.append(f"{label}: {name} {measured:.0f} ms > {limit:.0f} ms")
    return missed


def evaluate(config: SloConfig, stats: dict[str, RowStats]) -> list[str]:
    """Every missed objective, one line each; empty when the run meets its SLO."""
    missed = _check_row("total", stats.get(TOTAL_ROW), config.total)
    for name, threshold in config.endpoints.items():
        missed += _check_row(name, stats.get(name), threshold)
    return missed
