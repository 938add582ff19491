"""Triton's own load generator, ``perf_analyzer``, against every model with real photo payloads.

``python -m load_tests.perf_analyzer`` fetches the binary once, writes
``--input-data`` JSON made from a real photo for each model, runs it and
prints throughput and latency percentiles.

The binary comes from the ``tritonclient==2.51.0`` manylinux wheel (newer
perf-analyzer wheels need glibc 2.38). The wheel is downloaded with pip into
the cache (``$IMAGESERVE_CACHE`` or ``~/.cache/imageserve``, never into the
virtualenv, where it would replace tritonclient 2.73), checked against a
pinned sha256, and only ``perf_analyzer`` is extracted; the two libraries it
needs (libb64, libcudart) are linked from the nvidia-pytriton wheel's bundle.

Payloads, all from one real JPEG (``load_tests.photos``):
- ensembles and ``preprocess``: the encoded JPEG (BYTES, b64 with its 4-byte
  length prefix) and ``MAX_SIDE`` 0;
- ``depth`` / ``segmentation_*``: the model input made by ``imaging`` exactly
  as the preprocess step makes it;
- ``postprocess``: the real outputs of the ONNX models for that photo plus
  its RGB pixels, so all three PNGs are encoded.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from converters.catalog import ModelSource, load_catalog
from converters.fetch import atomic_write, cache_dir, sha256_of
from converters.triton_config import products
from imaging.decode import Photo
from load_tests.model_limit import model_tensor
from load_tests.photos import SIZES, check_sizes, photo_jpeg
from load_tests.services import MODEL_REPOSITORY, running_triton

WHEEL_REQUIREMENT = "tritonclient==2.51.0"
WHEEL_NAME = "tritonclient-2.51.0-py3-none-manylinux1_x86_64.whl"
WHEEL_SHA256 = "c485bb0123bdf310f90bc8b03d3489b28df2ffed55b30c7eee0b795b48113d52"
BINARY_MEMBER = "tritonclient-2.51.0.data/data/bin/perf_analyzer"
BINARY_SHA256 = "a8e3fa6d2fcd535770f18fa3c9baf21aee85697352637d24c6b2818401c95a34"
# soname perf_analyzer asks for -> glob of the file in nvidia_pytriton.libs/
LIBRARIES = {"libb64.so.0d": "libb64-*.so.0d", "libcudart.so.12": "libcudart-*.so.12*"}
MAX_PIXELS = 40_000_000
TOO_SHORT = "No valid requests recorded within time interval"
MAX_WINDOW_MS = 32_000


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer could not be installed or did not produce a measurement."""


def install_dir() -> Path:
    return cache_dir() / "perf_analyzer-2.51.0"


def _download_wheel(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform",
               "manylinux1_x86_64", "--disable-pip-version-check", "-q", "-d", str(into), WHEEL_REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheel = into / WHEEL_NAME
    if result.returncode != 0 or not wheel.exists():
        raise PerfAnalyzerError(f"`pip download {WHEEL_REQUIREMENT}` failed (exit {result.returncode}): "
                                f"{result.stderr.strip()[-600:]}; check access to PyPI")
    actual = sha256_of(wheel)
    if actual != WHEEL_SHA256:
        raise PerfAnalyzerError(f"{WHEEL_NAME}: sha256 {actual} is not the pinned {WHEEL_SHA256}; not using it")
    return wheel


def _link_libraries(lib_dir: Path) -> None:
    import pytriton  # the nvidia-pytriton wheel: its libraries sit beside the package

    bundle = Path(pytriton.__file__).resolve().parent.parent / "nvidia_pytriton.libs"
    lib_dir.mkdir(parents=True, exist_ok=True)
    for soname, pattern in LIBRARIES.items():
        found = sorted(bundle.glob(pattern))
        if not found:
            raise PerfAnalyzerError(f"no {pattern} in {bundle}: is nvidia-pytriton 0.7.0 installed in this venv?")
        link = lib_dir / soname
        link.unlink(missing_ok=True)
        link.symlink_to(found[0])


def install_perf_analyzer() -> Path:
    """The verified perf_analyzer binary in the cache, downloaded on first use."""
    binary = install_dir() / "bin" / "perf_analyzer"
    if not (binary.exists() and sha256_of(binary) == BINARY_SHA256):
        with tempfile.TemporaryDirectory(prefix="imageserve-perf-analyzer-") as tmp:
            with zipfile.ZipFile(_download_wheel(Path(tmp))) as wheel:
                data = wheel.read(BINARY_MEMBER)
        atomic_write(binary, data)
        if sha256_of(binary) != BINARY_SHA256:
            binary.unlink()
            raise PerfAnalyzerError(f"{BINARY_MEMBER}: sha256 does not match the pinned {BINARY_SHA256}")
        binary.chmod(0o755)
    if not all((install_dir() / "lib" / soname).exists() for soname in LIBRARIES):
        _link_libraries(install_dir() / "lib")
    return binary


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bytes_element(data: bytes) -> dict[str, str]:
    """One BYTES element as perf_analyzer reads it: 4-byte little-endian length, then the bytes."""
    return {"b64": _b64(struct.pack("<I", len(data)) + data)}


def _tensor(array: np.ndarray) -> dict:
    return {"content": {"b64": _b64(np.ascontiguousarray(array).tobytes())}, "shape": list(array.shape)}


def _model_output(source: ModelSource, repository: Path, photo: bytes) -> np.ndarray:
    session = ort.InferenceSession(str(repository / source.name / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: model_tensor(source, photo)[np.newaxis]}
    return session.run(None, feed)[0][0].astype(np.float32)  # [1, H, W]


def model_names(sources: dict[str, ModelSource]) -> list[str]:
    """Every model of the repository: the ensembles, then each step."""
    return [p.name for p in products(sources)] + ["preprocess", *sources, "postprocess"]


def input_data(model: str, photo: bytes, sources: dict[str, ModelSource], repository: Path) -> dict:
    """perf_analyzer ``--input-data`` JSON for ``model`` from one real photo."""
    if model.startswith("photo_") or model == "preprocess":
        entry: dict = {"IMAGE": _bytes_element(photo), "MAX_SIDE": [0]}
    elif model in sources:
        entry = {"image": {"b64": _b64(model_tensor(sources[model], photo).tobytes())}}
    elif model == "postprocess":
        rgb = np.asarray(Photo(photo, MAX_PIXELS).decode(), dtype=np.uint8)
        depth = next(s for s in sources.values() if s.output == "depth")
        alpha = next(s for s in sources.values() if s.output == "alpha")
        entry = {"OUTPUT_SIZE": [rgb.shape[0], rgb.shape[1]], "RGB": _tensor(rgb),
                 "DEPTH": _tensor(_model_output(depth, repository, photo)),
                 "ALPHA": _tensor(_model_output(alpha, repository, photo))}
    else:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(model_names(sources))}")
    return {"data": [entry]}


@dataclass(frozen=True)
class PerfResult:
    model: str
    concurrency: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def parse_csv(path: Path, model: str) -> list[PerfResult]:
    """Rows of perf_analyzer's ``-f`` CSV (latencies in microseconds)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise PerfAnalyzerError(f"{path} has no measurement rows")
    return [PerfResult(model, int(row["Concurrency"]), float(row["Inferences/Second"]),
                       float(row["p50 latency"]) / 1e3, float(row["p95 latency"]) / 1e3,
                       float(row["p99 latency"]) / 1e3) for row in rows]


def run_perf_analyzer(url: str, model: str, data: dict, concurrency: int, window_ms: int, protocol: str = "grpc",
                      shared_memory: str = "none") -> PerfResult:
    """Three measurement windows of ``window_ms`` at ``concurrency``, stability check off.

    perf_analyzer normally repeats windows until three agree within 10%; on 2
    busy cores they rarely do, and then it reports nothing. Its request-count
    mode instead rounds the window up to whole seconds, which distorts the
    throughput of short runs. Three fixed windows give a number every time; a
    window too short for one answer (U2-Netp at high concurrency) is doubled.
    """
    if concurrency < 1 or window_ms < 100:
        raise ValueError(f"need concurrency >= 1 and a window of at least 100 ms; got {concurrency}, {window_ms}")
    binary = install_perf_analyzer()
    env = {**os.environ, "LD_LIBRARY_PATH": str(install_dir() / "lib")}
    with tempfile.TemporaryDirectory(prefix="imageserve-pa-") as tmp:
        data_path, csv_path = Path(tmp) / "input.json", Path(tmp) / "result.csv"
        data_path.write_text(json.dumps(data))
        while True:
            command = [str(binary), "-m", model, "-u", url, "-i", protocol, "--input-data", str(data_path),
                       "--concurrency-range", str(concurrency), "--measurement-interval", str(window_ms),
                       "--stability-percentage", "100000", "--max-trials", "3", "-f", str(csv_path),
                       "--shared-memory", shared_memory]
            if shared_memory != "none":
                command += ["--output-shared-memory-size", str(64 << 20)]
            result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
            output = (result.stdout + result.stderr).strip()
            if result.returncode != 0 and TOO_SHORT in output and window_ms < MAX_WINDOW_MS:
                window_ms *= 2
                continue
            if result.returncode != 0 or not csv_path.exists():
                raise PerfAnalyzerError(f"perf_analyzer -m {model} failed (exit {result.returncode}): {output[-800:]}")
            return parse_csv(csv_path, model)[0]


def _int_list(value: str) -> list[int]:
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of integers") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give positive integers, e.g. 1,2,4,8")
    return numbers


def main(argv: list[str] | None = None) -> int:
    sources = load_catalog()
    names = model_names(sources)
    parser = argparse.ArgumentParser(prog="python -m load_tests.perf_analyzer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="Triton host:port (gRPC, or HTTP with --protocol http); "
                                      "default: start Triton on free ports for this run")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--models", default="all", help=f"'all' or comma-separated from: {', '.join(names)}")
    parser.add_argument("--photo", choices=list(SIZES), default="1MP", help="JPEG size of the payload")
    parser.add_argument("--concurrency", type=_int_list, default=[1, 4], help="e.g. 1,2,4,8")
    parser.add_argument("--window-ms", type=int, default=2000, help="measurement window (3 per concurrency)")
    parser.add_argument("--shared-memory", choices=("none", "system"), default="none")
    args = parser.parse_args(argv)
    models = names if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(names))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(names)}")
    if args.window_ms < 100:
        parser.error(f"--window-ms {args.window_ms} is too short: give at least 100")
    check_sizes([args.photo])
    install_perf_analyzer()
    photo = photo_jpeg(args.photo)
    print(f"| model | concurrency | infer/s | p50 ms | p95 ms | p99 ms |  ({args.photo} JPEG, {args.protocol})")
    print("|---|---|---|---|---|---|")

    def measure(url: str) -> None:
        for model in models:
            data = input_data(model, photo, sources, MODEL_REPOSITORY)
            for concurrency in args.concurrency:
                r = run_perf_analyzer(url, model, data, concurrency, args.window_ms, args.protocol,
                                      args.shared_memory)
                print(f"| {model} | {concurrency} | {r.throughput:.1f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
                      f"{r.p99_ms:.1f} |", flush=True)

    try:
        if args.url:
            measure(args.url)
        else:
            with running_triton() as triton:
                port = triton.ports.grpc if args.protocol == "grpc" else triton.ports.http
                measure(f"127.0.0.1:{port}")
    except PerfAnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
