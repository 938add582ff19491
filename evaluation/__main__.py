"""``python -m evaluation``: measure every mask variant on the composites with known alpha.

Sends each composite (``evaluation.composites``) to ``/v1/mask`` and ``/v1/cutout`` with every
variant the contract declares, one request at a time, and writes a markdown document and a JSON
file next to it: IoU, alpha error, the cutout's edge colour error against the raw photo's, client-side
latency, the ``X-Matte*`` response headers, the machine, the date, the commit and the command line.
Without ``--url`` it starts the real Triton and gateway itself on free ports (as the benchmarks do).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from contract.product import PRODUCT
from contract.schema import Operation
from evaluation.composites import BACKGROUNDS, CANVAS, PEOPLE, QUALITIES, Composite, composites
from evaluation.metrics import BAND, score
from stack.gateway import start_gateway, wait_until_ok
from stack.ports import free_port
from stack.processes import stop_process
from stack.triton import TritonPorts, TritonServer

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"
MASK = PRODUCT.operation("mask")
CUTOUT = PRODUCT.operation("cutout")


@contextmanager
def own_stack() -> Iterator[tuple[str, str]]:
    """The real Triton and gateway on free ports, with a fresh SQLite ledger and an admin key: (url, key)."""
    if not any(MODEL_REPOSITORY.glob("*/1/model.onnx")):
        raise SystemExit(f"no models in {MODEL_REPOSITORY}; run `make models` first")
    key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="imageserve-evaluation-") as tmp:
        ports = TritonPorts(free_port(), free_port(), free_port())
        with TritonServer(MODEL_REPOSITORY, ports, log_path=Path(tmp) / "triton.log") as triton:
            port = free_port()
            gateway = start_gateway("127.0.0.1", port, triton.ports.grpc, log_path=Path(tmp) / "gateway.log",
                                    extra_env={"GATEWAY_DATABASE_URL": f"sqlite:///{Path(tmp) / 'gateway.db'}",
                                               "GATEWAY_BOOTSTRAP_API_KEY": key})
            try:
                wait_until_ok(f"http://127.0.0.1:{port}/readyz", gateway, timeout_s=60)
                yield f"http://127.0.0.1:{port}", key
            finally:
                stop_process(gateway)


def call(client: httpx.Client, op: Operation, variant: str, composite: Composite) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.post(PRODUCT.path(op), params={op.variant_parameter: variant},
                           content=composite.jpeg, headers={"Content-Type": "image/jpeg"})
    return (time.perf_counter() - started) * 1000.0, response


def decode(response: httpx.Response, mode: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)).convert(mode))


def matte_headers(response: httpx.Response, seen: dict[str, list[str]]) -> None:
    for name, value in response.headers.items():
        if name.lower().startswith("x-matte") and value not in seen.setdefault(name.lower(), []):
            seen[name.lower()].append(value)


def evaluate_variant(client: httpx.Client, variant: str, items: list[Composite]) -> dict:
    """Scores, latencies and X-Matte headers of one variant over ``items``."""
    with_cutout = variant in CUTOUT.variant_names
    for operation in (MASK, CUTOUT) if with_cutout else (MASK,):  # warm-up, not timed
        call(client, operation, variant, items[0])
    rows, errors, headers = [], [], {MASK.name: {}, CUTOUT.name: {}}
    for composite in items:
        mask_ms, mask = call(client, MASK, variant, composite)
        cutout_ms, cutout = call(client, CUTOUT, variant, composite) if with_cutout else (math.nan, None)
        failed = [r for r in (mask, cutout) if r is not None and r.status_code != 200]
        if failed:
            errors.append({"composite": composite.name, "status": failed[0].status_code, "body": failed[0].text[:300]})
            continue
        matte_headers(mask, headers[MASK.name])
        if cutout is not None:
            matte_headers(cutout, headers[CUTOUT.name])
        s = score(composite.alpha, composite.foreground, composite.image, decode(mask, "L"),
                  decode(cutout, "RGBA") if cutout is not None else None)
        rows.append({"composite": composite.name, "iou": s.iou, "alpha_error": s.alpha_error,
                     "band_error": s.band_error, "band_baseline": s.band_baseline, "band_pixels": s.band_pixels,
                     "mask_ms": mask_ms, "cutout_ms": cutout_ms})
    return {"default": variant == MASK.default_variant, "summary": summarise(rows), "headers": headers,
            "errors": errors, "composites": rows}


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"scored": 0}

    def mean(key: str) -> float:
        values = [r[key] for r in rows if r[key] is not None and not math.isnan(r[key])]
        return float(np.mean(values)) if values else math.nan

    def latency(key: str) -> dict:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95))} if values else {}

    worst = min(rows, key=lambda r: r["iou"])
    band, baseline = mean("band_error"), mean("band_baseline")
    return {"scored": len(rows), "iou_mean": mean("iou"), "iou_worst": worst["iou"],
            "iou_worst_composite": worst["composite"], "alpha_error_mean": mean("alpha_error"),
            "iou_by_person": {who: float(np.mean([r["iou"] for r in rows if r["composite"].split("-")[0] == who]))
                              for who in PEOPLE if any(r["composite"].split("-")[0] == who for r in rows)},
            "band_error_mean": band, "band_baseline_mean": baseline,
            "band_ratio": band / baseline if baseline else math.nan,
            "mask_ms": latency("mask_ms"), "cutout_ms": latency("cutout_ms")}


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "nproc": len(os.sched_getaffinity(0))}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        flags = fields.get("flags", "").split()
        info |= {"cpu_model": fields.get("model name", ""), "cores": len({line for line in cpuinfo.splitlines()
                                                                          if line.startswith("processor")}),
                 "amx": sorted(f for f in flags if f.startswith("amx")),
                 "avx512": sorted(f for f in flags if f.startswith("avx512"))}
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        info["ram_gib"] = round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1)
    except (OSError, ValueError, KeyError):
        pass
    return info


def git_commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def document(results: dict) -> str:
    m, g, s = results["machine"], results["git"], results["set"]
    lines = [
        "# Matte evaluation", "",
        f"{s['count']} composites ({s['size']} set) of two real people with a known alpha "
        f"(`evaluation/data/*_alpha_ref.png`) over {len(s['backgrounds'])} of scikit-image's sample photos "
        f"({', '.join(s['backgrounds'])}), {s['canvas'][1]}x{s['canvas'][0]}, the person at 0.6–1.0 of the height, "
        f"JPEG quality {'/'.join(map(str, s['qualities']))} (`evaluation/composites.py`). Every mask variant of the "
        "contract, one request at a time; times are client-side, per request, after one warm-up request.", "",
        "- IoU: predicted ≥ 0.5 against true ≥ 0.5; alpha error: mean |predicted − true| on [0, 1].",
        f"- Edge colour: mean |RGB − true foreground| (0–255) where {BAND[0]} < true α < {BAND[1]} and the "
        "cutout's α > 0.05; *photo* is the same for the raw composite pixels (a cutout that keeps the photo's "
        "colour); ratio = cutout / photo (below 1: the cutout recovered some of the person's colour).", "",
        "| variant | mean IoU | worst IoU | mean alpha error | edge colour: cutout | photo | ratio "
        "| mask ms (median / p95) | cutout ms (median / p95) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in results["variants"].items():
        u = v["summary"]
        label = f"`{name}`" + (" (default)" if v["default"] else "")
        if not u["scored"]:
            lines.append(f"| {label} | – | – | – | – | – | – | – | – | {len(v['errors'])} |")
            continue
        mask_ms, cutout_ms = u["mask_ms"], u["cutout_ms"]
        lines.append(
            f"| {label} | {number(u['iou_mean'])} | {number(u['iou_worst'])} | {number(u['alpha_error_mean'])} "
            f"| {number(u['band_error_mean'], 1)} | {number(u['band_baseline_mean'], 1)} "
            f"| {number(u['band_ratio'], 2)} | {number(mask_ms['median'], 0)} / {number(mask_ms['p95'], 0)} "
            f"| {number(cutout_ms.get('median'), 0)} / {number(cutout_ms.get('p95'), 0)} | {len(v['errors'])} |")
    lines += ["", "Mean IoU by person, worst composite by IoU and the `X-Matte*` response headers seen:", ""]
    for name, v in results["variants"].items():
        seen = {f"{op} {h}": vals for op, hs in v["headers"].items() for h, vals in hs.items()}
        worst = v["summary"].get("iou_worst_composite", "–")
        people = ", ".join(f"{who} {number(x)}" for who, x in v["summary"].get("iou_by_person", {}).items())
        lines.append(f"- `{name}`: {people or '–'}; worst {worst}; headers: "
                     + (", ".join(f"{k}: {'/'.join(vals)}" for k, vals in seen.items()) or "none")
                     + (f"; {len(v['errors'])} failed, first: {v['errors'][0]['status']} {v['errors'][0]['body']}"
                        if v["errors"] else ""))
    lines += [
        "", "## Provenance", "",
        f"- Date: {results['date']}; commit `{g['commit']}`{' (with uncommitted changes)' if g['dirty'] else ''}",
        f"- Command: `{results['command']}`; service: {results['service']}",
        f"- Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, nproc {m['nproc']}, "
        f"{m.get('ram_gib', '?')} GiB RAM, AMX: {', '.join(m.get('amx', [])) or 'no'}, "
        f"AVX-512: {', '.join(m.get('avx512', [])) or 'no'}; {m['platform']}, Python {m['python']}; "
        f"load average (1 min) {m['load_average_1m']['before']:.1f} before, {m['load_average_1m']['after']:.1f} after "
        "(other work on the machine slows the times)",
        "- Per-composite numbers: `results.json`.", "",
    ]
    return "\n".join(lines)


def finite(value: object) -> object:
    """``value`` with every nan replaced by None (strict JSON) and floats rounded to 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def run(url: str, key: str, variants: list[str], size: str) -> dict:
    items = composites(size)
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as client:
        readyz = client.get("/readyz")
        results = {variant: evaluate_variant(client, variant, items) for variant in variants}
    return {"readyz": readyz.text, "variants": results, "count": len(items)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running gateway; default: start Triton and the gateway on free ports")
    parser.add_argument("--key", default=os.environ.get("IMAGESERVE_API_KEY"),
                        help="API key for --url (default $IMAGESERVE_API_KEY)")
    parser.add_argument("--variants", nargs="+", choices=MASK.variant_names, default=list(MASK.variant_names),
                        help="mask variants to measure (default: every one the contract declares)")
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--out", type=Path, default=REPO / "evaluation" / "results.md",
                        help="the markdown document; the JSON goes next to it with the suffix .json")
    args = parser.parse_args(argv)
    if args.url and not args.key:
        parser.error("--url needs --key (or $IMAGESERVE_API_KEY)")
    command = shlex.join(["python", "-m", "evaluation", *(sys.argv[1:] if argv is None else argv)])
    started, load_before = time.monotonic(), os.getloadavg()
    if args.url:
        measured, service = run(args.url, args.key, args.variants, args.size), args.url
    else:
        with own_stack() as (url, key):
            measured, service = run(url, key, args.variants, args.size), "Triton and gateway started by the command"
    results = {
        "command": command.replace(args.key, "***") if args.key else command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "git": git_commit(),
        "machine": machine() | {"load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]}},
        "service": service, "readyz": measured["readyz"], "seconds": round(time.monotonic() - started, 1),
        "set": {"size": args.size, "count": measured["count"], "canvas": list(CANVAS), "people": list(PEOPLE),
                "backgrounds": list(BACKGROUNDS), "qualities": list(QUALITIES)},
        "variants": measured["variants"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document(results))
    args.out.with_suffix(".json").write_text(json.dumps(finite(results), indent=1) + "\n")
    print(args.out.read_text())
    failed = sum(len(v["errors"]) for v in results["variants"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
