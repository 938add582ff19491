"""The one results document: ``bench.json`` is a list of sections and ``bench.md`` is rendered from it alone.

A section is a dict: ``key`` (what ``--sections`` names; every ``tuning`` run is kept), ``title``, ``measured``
(``at``, ``command``, ``machine``, ``note``), ``parts`` and maybe ``data`` (raw measurements, never rendered). A
part has an optional ``heading``, ``text``, a table (``columns``: ``[header, format]`` pairs over ``rows``, dicts)
and ``after`` text. A format is a ``str.format`` template over a row, or a list of them: the first whose fields
are all there and not empty, else "n/a". Nothing is looked up in the live product declaration: a section keeps
the labels it was measured under.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

SECTIONS = ("throughput", "latency", "edits", "peer", "decoding", "start", "first_start", "hot_path", "tuning")
Section = dict[str, Any]
PROVENANCE = [["section", "{title}"], ["measured", "{at}"], ["command", "`{command}`"]]


def section(key: str, title: str, measured: dict, parts: list[dict], **data: Any) -> Section:
    return {"key": key, "title": title, "measured": measured, "parts": parts, **({"data": data} if data else {})}


class _Fields(dict):
    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if value is None or value == "":
            raise KeyError(key)
        return value


def cell(row: dict, formats: str | list[str]) -> str:
    for template in [formats] if isinstance(formats, str) else formats:
        try:
            return template.format_map(_Fields(row))
        except (KeyError, IndexError):
            continue
    return "n/a"


def table(columns: list[list], rows: list[dict]) -> list[str]:
    cells = [[cell(row, formats) for _, formats in columns] for row in rows]
    return ["| " + " | ".join(header for header, _ in columns) + " |", "|" + "---|" * len(columns),
            *("|" + "|".join(f" {c} " if c else " " for c in row) + "|" for row in cells), ""]


def _part(part: dict) -> list[str]:
    lines = [line for text in [part.get("heading"), *part.get("text", [])] if text for line in (text, "")]
    if "columns" in part:
        lines += table(part["columns"], part["rows"])
    return lines + [line for text in part.get("after", []) for line in (text, "")]


def markdown(sections: list[Section]) -> str:
    lines = ["# Benchmark", "",
             "Written by `python -m load_tests.bench` (`make bench`) from [bench.json](bench.json); "
             "`python -m load_tests.bench --from-json load_tests/results/bench.json` rewrites it.", "",
             "Each section was measured as this table says; `--sections` re-measures some and keeps the others.", "",
             *table(PROVENANCE, [{"title": s["title"], **s["measured"]} for s in sections]),
             *(f"- {s['title']}: {s['measured']['note']}." for s in sections if s["measured"]["note"])]
    lines += [""] if lines[-1] else []
    lines += [f"Machine: {m}.\n" for m in dict.fromkeys(s["measured"]["machine"] for s in sections) if m]
    unrecorded = [s["title"] for s in sections if not s["measured"]["machine"]]
    lines += [f"Machine not recorded for: {'; '.join(unrecorded)}.", ""] if unrecorded else []
    lines += [line for s in sections for part in s["parts"] for line in _part(part)]
    return "\n".join(lines).rstrip("\n") + "\n"


def merged(earlier: list[Section], newer: list[Section]) -> list[Section]:
    """``earlier`` with the sections ``newer`` measured replaced and its tuning runs added, in document order."""
    replaced = {s["key"] for s in newer} - {"tuning"}
    kept = [s for s in earlier if s["key"] not in replaced]
    return sorted(kept + newer, key=lambda s: SECTIONS.index(s["key"]))


def load(path: Path) -> list[Section]:
    sections = json.loads(path.read_text())["sections"]
    for s in sections:
        if s["key"] not in SECTIONS or not {"title", "measured", "parts"} <= s.keys():
            raise ValueError(f"section {s.get('key')!r} is not one this version writes")
    return sections


def write(sections: list[Section], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"sections": sections}, indent=1) + "\n")
    (out / "bench.md").write_text(markdown(sections))
    return out / "bench.md"


def machine_description() -> str:
    """Cores, memory, OS and the versions that shape the numbers, in one line."""
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    versions = ", ".join(f"{name} {version(name.lower().replace(' ', ''))}" for name in (
        "ONNX Runtime", "Pillow", "numpy", "tritonclient", "FastAPI", "uvicorn", "locust"))
    return (f"{os.cpu_count()} cores ({cpu or platform.machine()}), "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, no GPU; "
            f"Linux {platform.release()}; Python {platform.python_version()}, "
            f"Triton 2.51.0 (nvidia-pytriton {version('nvidia-pytriton')}), {versions}")
