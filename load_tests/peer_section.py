"""Bench section ``peer``: the gateway beside rembg's own server (``load_tests/peer.py``), U2-Netp in both.

``bench.Served.peer`` measures it with the bench's closed loop: one scenario per operation, photo and
concurrency, the two targets' runs interleaved. This module names the targets, the photos and operations, and
renders the points, the ratios ours / rembg and the targets of issue 18 (the ratios are reported, never timed
tests): the mask >= 3x rembg's req/s at concurrency 4 with p95 no worse, the cutout >= 4x at 1 MP and 12 MP.
"""

from __future__ import annotations

from load_tests import report

OURS, PEER = "imageserve gateway", "rembg s"
MODEL = "matte_object_lite"  # U2-Netp: our model of both operations, the file rembg serves
SERVING = {OURS: ("triton", "gateway"), PEER: ("rembg",)}  # the processes whose CPU serves a target's requests
PHOTOS = ("1MP", "12MP")
OPERATIONS = ("mask_object-lite", "cutout_object-lite")
TARGET_CONCURRENCY = 4
# operation -> (at least this many times rembg's req/s, and p95 no worse than rembg's)
TARGETS = {"mask_object-lite": (3.0, True), "cutout_object-lite": (4.0, False)}
# The flags that decide which kernels a runtime can use (AMX and AVX-512 BF16 for OpenVINO's BF16).
CPU_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags(cpuinfo: str | None = None) -> dict[str, list[str]]:
    """Which of ``CPU_FLAGS`` the machine has, from /proc/cpuinfo."""
    if cpuinfo is None:
        with open("/proc/cpuinfo") as handle:
            cpuinfo = handle.read()
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    return {"present": [f for f in CPU_FLAGS if f in flags], "absent": [f for f in CPU_FLAGS if f not in flags]}


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def point_rows(scenarios: list[dict]) -> list[dict]:
    """One row per operation, photo, concurrency and target, with the serving processes' CPU ms per request."""
    rows = []
    for scenario in scenarios:
        for point in scenario["points"]:
            use = scenario["usage"][point["target"]]
            ms = use["cpu_ms_per_request"]
            rows.append({"operation": scenario["operation"], "photo": scenario["photo"], **point,
                         "cpu_ms": sum(ms[p] for p in SERVING[point["target"]]) if ms else None,
                         "other_cores": use["other_cores"]})
    return sorted(rows, key=lambda r: (OPERATIONS.index(r["operation"]), PHOTOS.index(r["photo"]), r["concurrency"],
                                       r["target"] != OURS))


def ratio_rows(points: list[dict]) -> list[dict]:
    """Ours / rembg per operation, photo and concurrency: req/s (higher is better), p50, p95 and CPU per request
    (lower is better)."""
    found = {(r["operation"], r["photo"], r["concurrency"], r["target"]): r for r in points}
    rows = []
    for (operation, photo, concurrency, target), ours in found.items():
        theirs = found.get((operation, photo, concurrency, PEER))
        if target != OURS or theirs is None:
            continue
        rows.append({"operation": operation, "photo": photo, "concurrency": concurrency,
                     **{key: _ratio(ours[key], theirs[key]) for key in ("throughput", "p50_ms", "p95_ms", "cpu_ms")}})
    return rows


def target_rows(ratios: list[dict]) -> list[dict]:
    """Each target of the issue at each photo, at concurrency ``TARGET_CONCURRENCY``: met, missed or not measured."""
    at = {(r["operation"], r["photo"]): r for r in ratios if r["concurrency"] == TARGET_CONCURRENCY}
    rows = []
    for operation, (times, p95_no_worse) in TARGETS.items():
        for photo in PHOTOS:
            ratio = at.get((operation, photo))
            wanted = f">= {times:g}x req/s" + (", p95 no worse (<= 1.00x)" if p95_no_worse else "")
            if ratio is None or ratio["throughput"] is None:
                verdict = "not measured"
            else:
                p95_met = not p95_no_worse or (ratio["p95_ms"] is not None and ratio["p95_ms"] <= 1.0)
                verdict = "met" if ratio["throughput"] >= times and p95_met else "missed"
            rows.append({"operation": operation, "photo": photo, "wanted": wanted, "verdict": verdict,
                         **({k: ratio[k] for k in ("throughput", "p95_ms")} if ratio else {})})
    return rows


def section(measured: dict, settings: dict, scenarios: list[dict]) -> report.Section:
    points = point_rows(scenarios)
    ratios = ratio_rows(points)
    flags, versions, layout = settings["cpu_flags"], settings["peer_versions"], settings["our_layout"]
    return report.section("peer", "The peer: rembg's own server", measured, [
        {"heading": "## The peer: the gateway beside rembg's own server, U2-Netp in both",
         "text": [f"`{OURS}`: `/v1/mask?model=object-lite` and `/v1/cutout?model=object-lite` (raw JPEG body), "
                  f"Triton + gateway as the other sections start them. `{PEER}`: rembg {versions['rembg']} "
                  f"(onnxruntime {versions['onnxruntime']}, numpy {versions['numpy']}, Pillow {versions['pillow']}; "
                  "`.venv-peer`), `rembg s --no-ui`, `POST /api/remove` with the multipart field `file`, "
                  "`model=u2netp` and `om=true` for the mask (without it the cutout), on the same U2-Netp file "
                  f"(the catalog's `matte_object_lite`). Threads: rembg `OMP_NUM_THREADS={settings['threads']}` "
                  "(its ONNX Runtime intra- and inter-op threads; its own thread pool runs concurrent requests "
                  f"side by side); ours: `{MODEL}` {layout['instances']} Triton instance(s) x "
                  f"{layout['intra_op_threads']} intra-op thread(s), spinning "
                  f"{settings['tuning']['intra_op_spinning']} (the Triton CPU tuning of bench.json's settings).",
                  f"CPU flags: {', '.join(flags['present']) or 'none of the listed'}; absent: "
                  f"{', '.join(flags['absent']) or 'none'}.",
                  f"Photos {', '.join(settings['photos'])} JPEG (the bench's astronaut portrait with grain); "
                  f"concurrency {settings['concurrency']}; {settings['repeats']} run(s) per point, the two targets "
                  f"interleaved, each a warm-up (>= {settings['warmup_s']} s) then a window of "
                  f"{settings['duration_s']} s or 4 rounds, whichever is longer. req/s is the median of the runs, "
                  "percentiles pool their requests. CPU ms per request: the serving processes' CPU (Triton with "
                  "its stubs + gateway, or the rembg server) over the successful requests, warm-up included; "
                  "\"other\" is the average load of processes outside the benchmark."],
         "columns": [["operation", "{operation}"], ["photo", "{photo}"], ["concurrency", "{concurrency}"],
                     ["target", "{target}"], ["req/s", "{throughput:.2f}"], ["p50 ms", "{p50_ms:.0f}"],
                     ["p95 ms", "{p95_ms:.0f}"], ["CPU ms / request", "{cpu_ms:.0f}"], ["requests", "{requests}"],
                     ["errors", ["{errors} ({first_error})", "{errors}"]], ["other cores", "{other_cores:.2f}"]],
         "rows": points},
        {"heading": "### Ours / rembg",
         "text": ["req/s above 1.00x: ours serves more; p50, p95 and CPU per request below 1.00x: ours is faster "
                  "or cheaper."],
         "columns": [["operation", "{operation}"], ["photo", "{photo}"], ["concurrency", "{concurrency}"],
                     ["req/s", "{throughput:.2f}x"], ["p50", "{p50_ms:.2f}x"], ["p95", "{p95_ms:.2f}x"],
                     ["CPU / request", "{cpu_ms:.2f}x"]], "rows": ratios},
        {"heading": f"### Targets (issue 18), at concurrency {TARGET_CONCURRENCY}",
         "columns": [["operation", "{operation}"], ["photo", "{photo}"], ["target", "{wanted}"],
                     ["req/s ours / rembg", "{throughput:.2f}x"], ["p95 ours / rembg", "{p95_ms:.2f}x"],
                     ["verdict", "{verdict}"]], "rows": target_rows(ratios)},
    ], settings=settings, scenarios=scenarios)
