"""What the bench measures without serving, each in a fresh interpreter (``bench.in_fresh_process``).

a. The models' own limit: ONNX Runtime on preprocessed tensors, per batch size, with one session of a thread
   per core or a single-threaded session per core side by side. e. Preprocessing: JPEG to model input, full
   decode or libjpeg's DCT scaling (Pillow's draft mode, as the preprocess step does). Hot path: the ledger's
   reserve + commit against the same transactions written the ORM way (statements built per call), on a fresh
   SQLite file; each operation's 1 MP PNG with zlib's default strategy against run-length (the PNGs served
   before ``imaging.encode``).
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image
from sqlalchemy import case, delete, or_, update

from contract.product import PRODUCT
from converters.catalog import ModelSource
from gateway import keys, ledger
from gateway.db import OpenReservation, Tenant, UsageRecord, make_engine, session_factory, utcnow
from gateway.migrate import upgrade
from imaging.decode import Photo
from imaging.tensors import model_input
from load_tests.naive_app import Inline, serve_inline
from load_tests.operations import LOAD_OPERATIONS
from load_tests.png_check import PngKind
from load_tests.report import section
from load_tests.traffic_mix import photo_jpeg
from triton_models.runtime import Session, open_session

BATCH_SIZES = (1, 2, 4, 8)
INPUT_SIDES = (512, 320, 256)  # a large model input; what U2-Netp and MediaPipe's segmentation read
MAX_PIXELS = PRODUCT.limits.max_pixels
HOLD = timedelta(seconds=90)


def _ms(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1e3


def _images_per_s(sessions: list[Session], tensor: np.ndarray, batch: int, duration_s: float) -> float:
    """The sessions running batches side by side (both runtimes release the GIL) for about ``duration_s``."""
    feed = {sessions[0].input_names[0]: np.repeat(tensor[np.newaxis], batch, axis=0)}
    done, start_line = [0] * len(sessions), threading.Barrier(len(sessions) + 1)

    def work(index: int) -> None:
        start_line.wait()
        started = time.perf_counter()
        while not done[index] or time.perf_counter() - started < duration_s:
            sessions[index].run(feed)
            done[index] += batch

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(sessions))]
    for thread in workers:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def model_limit(source: ModelSource, path: Path, photo: bytes, duration_s: float,
                batch_sizes: tuple[int, ...] = BATCH_SIZES) -> list[dict]:
    """A row per layout: images/s at each batch size (``b1``, ``b2``...), in the model's declared cpu runtime."""
    height, width = source.input_size
    rgb = Photo(photo, MAX_PIXELS).decode(min_size=(width, height))
    tensor = model_input(rgb, height, width, source.normalization)
    cores, rows = os.cpu_count() or 1, []
    layouts = {f"1 session x {cores} threads": (1, cores), f"{cores} sessions x 1 thread": (cores, 1)}
    for layout, (count, threads) in list(layouts.items())[:2 if cores > 1 else 1]:
        sessions = [open_session(path, source.cpu_runtime, threads, spinning=False) for _ in range(count)]
        _images_per_s(sessions, tensor, 1, 0.0)  # first runs allocate: not measured
        rows.append({"model": source.name, "layout": layout, "runtime": source.cpu_runtime,
                     **{f"b{b}": _images_per_s(sessions, tensor, b, duration_s) for b in batch_sizes}})
    return rows


def decoding(measured: dict, sizes: list[str], repeats: int) -> dict:
    """Section e.: the median of ``repeats`` alternating runs per photo size and model input side."""
    rows = []
    for size, side in ((size, side) for size in sizes for side in INPUT_SIDES):
        def to_input(reduced: bool, data: bytes = photo_jpeg(size), side: int = side) -> float:
            return _ms(lambda: model_input(Photo(data, MAX_PIXELS).decode(min_size=(side, side) if reduced else None),
                                           side, side, "unit"))
        to_input(False)  # warm caches and Pillow's plugins
        full, reduced = (median(runs) for runs in zip(*((to_input(False), to_input(True)) for _ in range(repeats)),
                                                       strict=True))
        rows.append({"photo": size, "side": side, "full_ms": full, "reduced_ms": reduced, "share": reduced / full})
    return section("decoding", "e. Preprocessing", measured, [{
        "heading": "## e. Preprocessing alone: JPEG to model input",
        "text": ["Median ms from encoded bytes to a float32 tensor (decode, resize, normalise), single thread."],
        "columns": [["photo", "{photo}"], ["model input", "{side}x{side}"], ["full decode + resize", "{full_ms:.1f}"],
                    ["reduced-size (DCT-scaled) decode + resize", "{reduced_ms:.1f}"],
                    ["reduced / full", "{share:.2f}"]], "rows": rows}])


def _orm_transactions(sessions, tenant_id: int, credits: int, request_id: str, charge: ledger.Charge) -> float:  # noqa: ANN001
    """Reserve, then commit, built per call the ORM way; the ms the reserve took."""
    now = utcnow()
    month = now.strftime("%Y-%m")
    used = case((Tenant.quota_month == month, Tenant.quota_used), else_=0)
    with sessions.begin() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant_id, Tenant.balance >= credits, or_(
            Tenant.monthly_quota.is_(None), used + credits <= Tenant.monthly_quota)).values(
            balance=Tenant.balance - credits, quota_used=used + credits, quota_month=month).returning(
            Tenant.balance).execution_options(synchronize_session=False)).scalar_one()
        session.add(OpenReservation(id=request_id, tenant_id=tenant_id, credits=credits, month=month,
                                    created_at=now, expires_at=now + HOLD))
    reserved = time.perf_counter()
    with sessions.begin() as session:
        session.execute(delete(OpenReservation).where(OpenReservation.id == request_id))
        session.add(UsageRecord(tenant_id=tenant_id, key_id=charge.key_id, operation=charge.operation,
                                model=charge.model, input_megapixels=1.0, output_bytes=1, credits=credits,
                                gateway_latency_ms=1.0, triton_latency_ms=1.0, request_id=request_id))
    return reserved


def hot_path(measured: dict, repeats: int) -> dict:
    """The hot-path section: medians of ``repeats`` ledger rounds (the first dropped) and PNG encodes (a tenth)."""
    first = PRODUCT.ensembles()[0]
    charge = ledger.Charge("k", first.operation.name, first.variant, 1.0, 1, 1.0, 1.0, "")
    times: dict[str, list[float]] = {"orm reserve": [], "orm commit": [], "reserve": [], "commit": []}
    with tempfile.TemporaryDirectory(prefix="imageserve-hot-path-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'gateway.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        keys.bootstrap(sessions, "k" * 40, 10**12, 1000.0, 1000)  # tenant 1 with ample credits
        for _ in range(repeats + 1):  # both ways alternate; the first round warms them
            started = time.perf_counter()
            reserved = _orm_transactions(sessions, 1, 2, uuid.uuid4().hex, charge)
            times["orm reserve"].append(reserved - started)
            times["orm commit"].append(time.perf_counter() - reserved)
            request_id, started = uuid.uuid4().hex, time.perf_counter()
            reservation = ledger.reserve(sessions, 1, 2, request_id, HOLD)
            reserved = time.perf_counter()
            ledger.commit(sessions, reservation, replace(charge, request_id=request_id))
            times["reserve"].append(reserved - started)
            times["commit"].append(time.perf_counter() - reserved)
        engine.dispose()
    ledger_rows = [{"step": step, "orm_ms": median(times[f"orm {step}"][1:]) * 1e3,
                    "prebuilt_ms": median(times[step][1:]) * 1e3} for step in ("reserve", "commit")]
    return hot_path_section(measured, repeats, ledger_rows, _png_rows(max(3, repeats // 10)))


def hot_path_section(measured: dict, repeats: int, ledger_rows: list[dict], png_rows: list[dict]) -> dict:
    ledger_rows = [{**row, "ratio": row["prebuilt_ms"] / row["orm_ms"]} for row in ledger_rows]
    return section("hot_path", "Hot-path costs", measured, [
        {"heading": "## Hot-path costs, each beside its baseline",
         "text": [f"Medians of {repeats} calls (PNG: {max(3, repeats // 10)}).",
                  "Ledger transactions (SQLite, one thread): `gateway.ledger` against the same two transactions "
                  "written the ORM way, statements built per call."],
         "columns": [["step", "{step}"], ["ORM, statements built per call (ms)", "{orm_ms:.3f}"],
                     ["statements built once (ms)", "{prebuilt_ms:.3f}"], ["ratio", "{ratio:.2f}"]],
         "rows": ledger_rows},
        {"text": ["PNG encode of real 1 MP outputs (level 1), zlib's default strategy against run-length (what "
                  "served PNGs used before `imaging.encode` chose fpng and OpenCV by measurement); the decoded "
                  "pixels are identical."],
         "columns": [["output", "{output}"], ["default strategy ms", "{default_ms:.1f}"], ["KiB", "{default_kib:.0f}"],
                     ["run-length (Z_RLE) ms", "{rle_ms:.1f}"], ["KiB", "{rle_kib:.0f}"]],
         "rows": png_rows}], repeats=repeats)


def _png_rows(repeats: int) -> list[dict]:
    """Default strategy against Z_RLE on each operation's real output (default variant) for the 1 MP photo."""
    inline, rows = Inline.load(), []
    for operation in (PRODUCT.operation(name) for name in LOAD_OPERATIONS):
        body, _ = serve_inline(inline, photo_jpeg("1MP"), 0, operation, operation.default_variant)
        pixels = np.asarray(Image.open(io.BytesIO(body)))
        image, row = Image.fromarray(pixels), {"output": f"{operation.name} ({PngKind.of(operation.output).name})"}
        for name, strategy in (("default", zlib.Z_DEFAULT_STRATEGY), ("rle", zlib.Z_RLE)):
            def encode(strategy: int = strategy, image: Image.Image = image) -> io.BytesIO:
                image.save(buffer := io.BytesIO(), format="PNG", compress_level=1, compress_type=strategy)
                return buffer
            if not np.array_equal(np.asarray(Image.open(encode())), pixels):
                raise AssertionError(f"{row['output']}: the PNG does not decode to the same pixels")
            row |= {f"{name}_ms": median(_ms(encode) for _ in range(repeats)), f"{name}_kib": encode().tell() / 1024}
        rows.append(row)
    return rows
