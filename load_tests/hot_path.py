"""Bench section ``hot_path``: two per-request costs, each beside its baseline in one run.

1. Ledger: ``gateway.ledger.reserve`` + ``commit`` (statements built once on the tables) against the
   same two transactions written the ORM way, statements built per call and rows added to the
   session (the code before tuning.md section 7), on a fresh SQLite file, one thread.
2. PNG encode of real 1 MP model outputs (mask, 16-bit depth, RGBA cutout) with zlib's default
   strategy against the run-length strategy ``imaging.outputs.encode_png`` uses, at level 1;
   the decoded pixels are checked identical.

Medians of ``repeats`` calls (PNG: a tenth of them, at least 3).
"""

from __future__ import annotations

import io
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import case, delete, or_, update

from contract.product import PRODUCT
from converters.catalog import load_catalog
from gateway import keys, ledger
from gateway.db import OpenReservation, Tenant, UsageRecord, make_engine, session_factory, utcnow
from gateway.migrate import upgrade
from imaging.decode import Photo
from imaging.outputs import alpha_to_uint8, depth_to_uint16
from load_tests.naive_app import InlineModel
from load_tests.photos import photo_jpeg
from load_tests.results import HotPath, LedgerRow, PngRow, Provenance
from load_tests.services import MODEL_REPOSITORY
from load_tests.stats import median_of

HOLD = timedelta(seconds=90)


def _orm_reserve(sessions, tenant_id: int, credits: int, request_id: str) -> None:  # noqa: ANN001
    now = utcnow()
    month = now.strftime("%Y-%m")
    used = case((Tenant.quota_month == month, Tenant.quota_used), else_=0)
    with sessions.begin() as session:
        session.execute(
            update(Tenant).where(Tenant.id == tenant_id, Tenant.balance >= credits,
                                 or_(Tenant.monthly_quota.is_(None), used + credits <= Tenant.monthly_quota))
            .values(balance=Tenant.balance - credits, quota_used=used + credits, quota_month=month)
            .returning(Tenant.balance).execution_options(synchronize_session=False)).scalar_one()
        session.add(OpenReservation(id=request_id, tenant_id=tenant_id, credits=credits, month=month,
                                    created_at=now, expires_at=now + HOLD))


def _orm_commit(sessions, tenant_id: int, credits: int, request_id: str) -> None:  # noqa: ANN001
    with sessions.begin() as session:
        session.execute(delete(OpenReservation).where(OpenReservation.id == request_id))
        session.add(UsageRecord(tenant_id=tenant_id, key_id="k", operation="mask", model="fast", input_megapixels=1.0,
                                output_bytes=1, credits=credits, gateway_latency_ms=1.0, triton_latency_ms=1.0,
                                request_id=request_id))


CHARGE = ledger.Charge("k", "mask", "fast", 1.0, 1, 1.0, 1.0, "")


def _timed(function: Callable[[], object], repeats: int) -> float:
    """Median ms of ``repeats`` calls, after one untimed call."""
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return median_of(samples) * 1e3


def measure_ledger(repeats: int) -> list[LedgerRow]:
    """Reserve and commit, the ORM way and the prebuilt statements alternating."""
    times: dict[tuple[str, str], list[float]] = {(step, way): [] for step in ("reserve", "commit")
                                                 for way in ("orm", "prebuilt")}
    with tempfile.TemporaryDirectory(prefix="imageserve-hot-path-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'gateway.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        tenant_id = 1
        keys.bootstrap(sessions, "k" * 40, 10**12, 1000.0, 1000)  # tenant 1 with ample credits
        for _ in range(repeats + 1):  # the first round warms both ways and is dropped below
            request_id = uuid.uuid4().hex
            started = time.perf_counter()
            _orm_reserve(sessions, tenant_id, 2, request_id)
            reserved = time.perf_counter()
            _orm_commit(sessions, tenant_id, 2, request_id)
            times["reserve", "orm"].append(reserved - started)
            times["commit", "orm"].append(time.perf_counter() - reserved)
            request_id = uuid.uuid4().hex
            started = time.perf_counter()
            reservation = ledger.reserve(sessions, tenant_id, 2, request_id, HOLD)
            reserved = time.perf_counter()
            ledger.commit(sessions, reservation, replace(CHARGE, request_id=request_id))
            times["reserve", "prebuilt"].append(reserved - started)
            times["commit", "prebuilt"].append(time.perf_counter() - reserved)
        engine.dispose()
    return [LedgerRow(step, median_of(times[step, "orm"][1:]) * 1e3, median_of(times[step, "prebuilt"][1:]) * 1e3)
            for step in ("reserve", "commit")]


def _model_output(rgb: Image.Image, model: str) -> np.ndarray:
    return InlineModel.load(load_catalog()[model], MODEL_REPOSITORY).run(rgb)


def _png(image: Image.Image, strategy: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, compress_type=strategy)
    return buffer.getvalue()


def measure_png(repeats: int) -> list[PngRow]:
    """Default strategy against Z_RLE on the real outputs for the 1 MP photo."""
    rgb = Photo(photo_jpeg("1MP"), PRODUCT.limits.max_pixels).decode(None)
    alpha = alpha_to_uint8(_model_output(rgb, "segmentation_fast"), rgb.size)
    depth, _, _ = depth_to_uint16(_model_output(rgb, "depth"), rgb.size)
    rgba = np.dstack([np.asarray(rgb), alpha])
    rgba[alpha == 0, :3] = 0
    rows = []
    for name, image in (("mask", Image.fromarray(alpha)), ("depth (16-bit)", Image.fromarray(depth)),
                        ("cutout (RGBA)", Image.fromarray(rgba))):
        default, rle = _png(image, zlib.Z_DEFAULT_STRATEGY), _png(image, zlib.Z_RLE)
        for data in (default, rle):
            if not np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image)):
                raise AssertionError(f"{name}: the PNG does not decode to the same pixels")
        rows.append(PngRow(name, _timed(partial(_png, image, zlib.Z_DEFAULT_STRATEGY), repeats), len(default) / 1024,
                           _timed(partial(_png, image, zlib.Z_RLE), repeats), len(rle) / 1024))
    return rows


def measure_hot_path(measured: Provenance, repeats: int) -> HotPath:
    return HotPath(measured, repeats, measure_ledger(repeats), measure_png(max(3, repeats // 10)))
