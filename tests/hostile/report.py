"""Results of the hostile-input tests, written as the Markdown table of docs/robustness.md.

Set ``IMAGESERVE_HOSTILE_REPORT=path.md`` when running ``tests/hostile`` to
get the table of this run; without it nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPORT_ENV = "IMAGESERVE_HOSTILE_REPORT"


@dataclass(frozen=True)
class Outcome:
    case: str
    category: str
    what: str
    status: int
    code: str
    seconds: float


RESULTS: list[Outcome] = []


def record(case: str, category: str, what: str, status: int, code: str, seconds: float) -> None:
    RESULTS.append(Outcome(case, category, what, status, code, seconds))


def markdown(outcomes: list[Outcome]) -> str:
    categories: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        categories.setdefault(outcome.category, []).append(outcome)
    lines = ["| category | case | input | status | code | time |", "|---|---|---|---|---|---|"]
    for category, rows in categories.items():
        for row in rows:
            lines.append(f"| {category} | `{row.case}` | {row.what} | {row.status} | {row.code or '-'} | "
                         f"{row.seconds * 1000:.0f} ms |")
    return "\n".join(lines) + "\n"


def write_if_asked() -> Path | None:
    target = os.environ.get(REPORT_ENV)
    if not target or not RESULTS:
        return None
    path = Path(target)
    path.write_text(markdown(RESULTS))
    return path
