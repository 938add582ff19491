"""The gateway app in-process (TestClient) with a scripted Triton, for unit tests of the HTTP layer.

Everything but Triton is real (database, rate limiter, metrics); the end-to-end
tests in tests/e2e run the same paths against the real Triton.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Iterator

import numpy as np
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from contract.product import PRODUCT
from contract.schema import Product, Variant
from gateway import keys, ledger
from gateway.app import create_app
from gateway.errors import ServiceUnavailable
from gateway.settings import GatewaySettings
from gateway.tenants import create_tenant
from tests.conftest import Database, free_port, jpeg_bytes

PHOTO = jpeg_bytes(np.full((64, 64, 3), 120, np.uint8))  # 0.004 MP: mask costs 1 + 1 = 2 credits
JPEG = {"Content-Type": "image/jpeg"}
ADMIN_KEY = secrets.token_urlsafe(32)


# What the scripted ensembles answer in their header outputs (every other one: zeros).
HEADER_VALUES = {"DEPTH_RANGE": [0.5, 3.0], "MATTE_REFINED": [1.0], "CROP_BOX": [4.0, 0.0, 48.0, 60.0]}


class FakeTriton:
    """Answers like the ensembles (or fails like an unreachable Triton)."""

    def __init__(self) -> None:
        self.fail = False
        self.error: Exception | None = None  # raised by every call, like Triton refusing the photo
        self.calls = 0
        self.delay_s = 0.0
        self.timeouts: list[float] = []
        self.ensembles: list[str] = []
        self.inputs: list[dict[str, object]] = []  # the parameter and image-part tensors of each call

    async def infer(self, model: str, image: bytes, parameters: dict[str, object], outputs: list[str],
                    timeout_s: float) -> dict[str, np.ndarray]:
        self.calls += 1
        self.ensembles.append(model)
        self.inputs.append(dict(parameters))
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ServiceUnavailable("the inference service is unavailable; retry shortly")
        if self.error is not None:
            raise self.error
        result = {name: np.array([[b"\x89PNG fake"]], dtype=np.object_) for name in outputs}
        for output in PRODUCT.header_outputs():
            if output.tensor in outputs:
                values = HEADER_VALUES.get(output.tensor, [0.0] * output.values)
                result[output.tensor] = np.array([values], dtype=np.float32)
        return result

    async def model_readiness(self, models: list[str]) -> dict[str, bool]:
        return dict.fromkeys(models, True)

    async def close(self) -> None:
        pass


def make_client(database: Database, product: Product = PRODUCT, **overrides: object) -> Iterator[TestClient]:
    options = {"triton_grpc_url": f"127.0.0.1:{free_port()}", "request_budget_s": 2, "database_url": database.url,
               "database_schema": database.schema, "bootstrap_api_key": ADMIN_KEY, **overrides}
    settings = GatewaySettings(**options)
    app = create_app(settings, CollectorRegistry(), product)
    with TestClient(app) as client:
        real = app.state.triton
        app.state.triton = FakeTriton()
        yield client
        app.state.triton = real


def tenant_key(client: TestClient, name: str = "acme", credits: int = 100, **options: object) -> tuple[int, str, str]:
    sessions = client.app.state.sessions
    tenant = create_tenant(sessions, name, credits=credits, **options)
    key_id, key = keys.create_key(sessions, name)
    return tenant.id, key_id, key


def balance(client: TestClient, tenant_id: int) -> int:
    return ledger.balance(client.app.state.sessions, tenant_id)


def metric(client: TestClient, line: str) -> float:
    text = client.get("/metrics").text
    return next((float(row.split()[-1]) for row in text.splitlines() if row.startswith(line)), 0.0)


def with_variant(product: Product, operation: str, variant: Variant) -> Product:
    """A copy of ``product`` with one more variant of ``operation``: a declaration and nothing else."""
    op = product.operation(operation)
    changed = dataclasses.replace(op, variants=(*op.variants, variant))
    return dataclasses.replace(product, operations=tuple(changed if o is op else o for o in product.operations))
