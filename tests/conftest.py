"""Shared fixtures: real photos, free ports, and the real Triton server."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from sqlalchemy.orm import sessionmaker

from contract.product import PRODUCT
from gateway.db import make_engine, session_factory
from gateway.migrate import upgrade
from stack.ports import free_port
from stack.triton import TritonPorts, TritonServer

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"


def jpeg_bytes(rgb: np.ndarray, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, exif=exif or Image.Exif())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real portrait, 512x512 RGB: the person fills the lower centre."""
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def photos(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    """Real photos as RGB: two people (``camera`` is greyscale, repeated into three channels), a cup, a cat."""
    camera = np.repeat(skimage.data.camera()[..., np.newaxis], 3, axis=-1)
    return {"astronaut": astronaut, "camera": camera, "coffee": skimage.data.coffee(),
            "chelsea": skimage.data.chelsea()}


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """The real tritonserver on free ports, serving the built model repository."""
    missing = sorted(name for name in PRODUCT.models() if not (MODEL_REPOSITORY / name / "1" / "model.onnx").exists())
    if missing:
        pytest.fail(f"models not built: {missing}; run `make models` (make test does it)")
    ports = TritonPorts(free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp("triton") / "triton.log"
    with TritonServer(MODEL_REPOSITORY, ports, log_path=log) as server:
        yield server


POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass(frozen=True)
class Database:
    url: str
    schema: str | None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty gateway database: a SQLite file in tmp, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'gateway.db'}", None)
        return
    import sqlalchemy

    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Database(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sessions(database: Database) -> Iterator[sessionmaker]:
    engine = make_engine(database.url, database.schema)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()
