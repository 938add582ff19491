"""(a) The models' own limit: ONNX Runtime alone on already preprocessed tensors.

No decoding, no serving, no PNG: the most images per second each ONNX model
gives on this machine, over batch sizes and two ways of using all cores (one
session with one intra-op thread per core, or one single-threaded session per
core running side by side). The best of these is the ceiling every serving
path is compared with.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from converters.catalog import ModelSource
from imaging.decode import Photo
from imaging.tensors import model_input

BATCH_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class LimitPoint:
    """Images per second of one model for one batch size and threading layout."""

    model: str
    layout: str
    batch: int
    images_per_s: float


def layouts(cores: int) -> dict[str, tuple[int, int]]:
    """Layout name -> (parallel sessions, intra-op threads each)."""
    found = {f"1 session x {cores} threads": (1, cores)}
    if cores > 1:
        found[f"{cores} sessions x 1 thread"] = (cores, 1)
    return found


def model_tensor(source: ModelSource, photo: bytes) -> np.ndarray:
    """The model's input for a real photo, made exactly as the preprocess step makes it."""
    height, width = source.input_size
    rgb = Photo(photo, max_pixels=40_000_000).decode(min_size=(width, height))
    return model_input(rgb, height, width, source.normalization)


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_point(runners: list[ort.InferenceSession], tensor: np.ndarray, batch: int, duration_s: float) -> float:
    """Images/s with the sessions running batches side by side for about ``duration_s`` (at least one run each)."""
    feed = {runners[0].get_inputs()[0].name: np.repeat(tensor[np.newaxis], batch, axis=0)}
    done = [0] * len(runners)
    start_line = threading.Barrier(len(runners) + 1)  # the workers, and this thread that starts the clock

    def work(index: int) -> None:
        start_line.wait()
        started = time.perf_counter()
        while True:
            runners[index].run(None, feed)  # releases the GIL: sessions really run side by side
            done[index] += batch
            if time.perf_counter() - started >= duration_s:
                return

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(runners))]
    for thread in workers:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def measure_model(source: ModelSource, path: Path, photo: bytes, duration_s: float,
                  batch_sizes: tuple[int, ...] = BATCH_SIZES) -> list[LimitPoint]:
    """Every layout at every batch size; each layout's sessions are made and warmed up once."""
    tensor = model_tensor(source, photo)
    points = []
    for layout, (sessions, threads) in layouts(os.cpu_count() or 1).items():
        runners = [_session(path, threads) for _ in range(sessions)]
        measure_point(runners, tensor, 1, 0.0)  # first runs allocate: not measured
        for batch in batch_sizes:
            points.append(LimitPoint(source.name, layout, batch, measure_point(runners, tensor, batch, duration_s)))
    return points


def best(points: list[LimitPoint]) -> LimitPoint:
    """The configuration with the most images per second: the model's own limit."""
    if not points:
        raise ValueError("no measurements")
    return max(points, key=lambda point: point.images_per_s)
