"""The product declaration is the one source: a declared variant is routed, priced, documented and
ready-checked with no other edit, and the README, settings and Triton errors follow the declaration."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tritonclient.utils import InferenceServerException

from contract.api_table import api_rows
from contract.product import PRODUCT
from contract.schema import ContractError, Operation, Variant
from gateway.errors import BadImage, ServiceUnavailable, UpstreamTimeout
from gateway.settings import GatewaySettings
from gateway.triton_client import _translate
from tests.conftest import Database
from tests.unit.app_client import JPEG, PHOTO, make_client, metric, tenant_key, with_variant

README = Path(__file__).resolve().parents[2] / "README.md"
SHARP = Variant("sharp", ("matte_object_lite",), "test-only variant")
EXTRA = with_variant(PRODUCT, "mask", SHARP)


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database, EXTRA)


def test_a_declared_variant_is_routed_priced_documented_and_ready_checked(client: TestClient) -> None:
    _, _, key = tenant_key(client, credits=10)
    answer = client.post("/v1/mask?model=sharp", content=PHOTO, headers={**JPEG, "X-API-Key": key})
    assert answer.status_code == 200, answer.text
    assert client.app.state.triton.ensembles == ["photo_mask_sharp"]
    assert answer.headers["X-Credits-Charged"] == "2"  # mask's base 1 + 1 per started megapixel
    assert metric(client, 'gateway_credits_charged_total{operation="mask"}') == 2
    model = client.get("/openapi.json").json()["paths"]["/v1/mask"]["post"]["parameters"][0]
    assert model["name"] == "model" and "sharp" in model["schema"]["enum"]
    assert "test-only variant" in model["description"]
    ready = client.get("/readyz").json()
    assert "photo_mask_sharp" in ready["models"]


def test_the_default_product_does_not_route_the_test_variant(database: Database) -> None:
    for plain in make_client(database):
        _, _, key = tenant_key(plain, credits=10)
        answer = plain.post("/v1/mask?model=sharp", content=PHOTO, headers={**JPEG, "X-API-Key": key})
        assert answer.status_code == 400 and "fast" in answer.json()["error"]["message"]
        assert plain.app.state.triton.calls == 0


def test_every_declared_operation_has_a_route_and_a_price(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for operation in PRODUCT.operations:
        assert f"/v1/{operation.name}" in paths
        assert client.app.state.billing.prices.cost(operation.name, 0.5) == operation.base_credits + 1


def test_readme_api_table_is_the_declaration() -> None:
    assert api_rows(PRODUCT) in README.read_text(), "README's API table differs from contract/product.py"


def test_settings_cannot_raise_a_limit_the_triton_steps_enforce() -> None:
    with pytest.raises(ValidationError, match="contract/product.py"):
        GatewaySettings(max_pixels=PRODUCT.limits.max_pixels + 1)
    assert GatewaySettings(max_pixels=1_000_000).max_pixels == 1_000_000
    with pytest.raises(ValidationError, match="unknown"):
        GatewaySettings(price_base_credits={"dpeth": 1})


def test_a_declaration_without_a_model_or_with_a_bad_default_is_refused() -> None:
    mask = PRODUCT.operation("mask")
    with pytest.raises(ContractError, match="default_variant"):
        type(PRODUCT)(**{**_fields(PRODUCT), "operations": (Operation(
            "x", "x", "x", mask.output, 1, variants=mask.variants, default_variant="nope"),)})
    with pytest.raises(ContractError, match="uses neither a model nor the photo"):
        type(PRODUCT)(**{**_fields(PRODUCT), "operations": (Operation("x", "x", "x", mask.output, 1),)})


def _fields(product: object) -> dict:
    return {name: getattr(product, name) for name in product.__dataclass_fields__ if not name.startswith("_")}


@pytest.mark.parametrize(("status", "message", "expected", "echoed"), [
    ("StatusCode.INVALID_ARGUMENT", f"in ensemble 'photo_depth', {PRODUCT.step_error_marker}the PNG is truncated",
     BadImage, "the PNG is truncated"),
    ("StatusCode.INVALID_ARGUMENT", "unexpected shape for input 'IMAGE' for model 'photo_depth'",
     ServiceUnavailable, None),
    ("StatusCode.INTERNAL", "internal error: ValueError at /srv/secret/path.py", ServiceUnavailable, None),
    ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", UpstreamTimeout, None),
    ("StatusCode.NOT_FOUND", "Request for unknown model: 'photo_depth' is not found", ServiceUnavailable, None),
    ("StatusCode.UNAVAILABLE", "failed to connect to all addresses; ipv4:10.0.0.7:8001", ServiceUnavailable, None),
])
def test_triton_failures_are_classified_by_status_and_only_marked_text_is_echoed(
        status: str, message: str, expected: type, echoed: str | None) -> None:
    error = _translate(InferenceServerException(message, status=status), "photo_depth")
    assert type(error) is expected
    assert (error.code == "model_unavailable") == (status == "StatusCode.NOT_FOUND")
    if echoed is None:
        assert message not in error.message and "secret" not in error.message
    else:
        assert error.message == echoed


def test_an_ensemble_input_named_like_an_output_is_refused() -> None:
    background = PRODUCT.operation("background")
    clash = dataclasses.replace(background, image_parts=(dataclasses.replace(background.image_parts[0],
                                                                             tensor=background.output.tensor),))
    with pytest.raises(ContractError, match="distinct tensor names"):
        type(PRODUCT)(**{**_fields(PRODUCT), "operations": (clash,)})


def test_an_ensemble_whose_called_model_is_down_is_not_ready(client: TestClient) -> None:
    """Triton sees only an ensemble's own steps; the matte the auto step calls and the faces step's networks are
    called through Triton, so /readyz checks them too."""
    triton = client.app.state.triton

    async def without(models: list[str]) -> dict[str, bool]:
        return {name: name != "matte_object" for name in models}

    triton.model_readiness = without
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded"
    assert "photo_cutout_auto" in ready["missing"] and "photo_cutout_object" in ready["missing"]
    assert ready["models"]["photo_cutout_portrait"] and ready["models"]["photo_mask_fast"]

    async def no_faces(models: list[str]) -> dict[str, bool]:
        return {name: name != PRODUCT.face_models[0] for name in models}

    triton.model_readiness = no_faces
    client.app.state.readiness = type(client.app.state.readiness)()  # a fresh answer, not the cached one
    ready = client.get("/readyz").json()
    assert "photo_mask_fast_faces" in ready["missing"]  # the mask's face layers need the detector
    assert ready["models"]["photo_mask_fast"]  # its subject matte does not: that twin has no faces step
    assert ready["models"]["photo_cutout_portrait"] and ready["models"]["photo_erase"]

    async def no_style_transform(models: list[str]) -> dict[str, bool]:
        return {name: name != "style_transform" for name in models}

    triton.model_readiness = no_style_transform
    client.app.state.readiness = type(client.app.state.readiness)()
    ready = client.get("/readyz").json()
    assert "photo_style_auto" in ready["missing"]  # the style step calls it for a style image
    assert ready["models"]["photo_cutout_auto"]


def test_a_mask_with_a_fixed_matte_runs_the_faces_step_only_for_the_layers_made_from_faces() -> None:
    mask, cutout = PRODUCT.operation("mask"), PRODUCT.operation("cutout")
    assert PRODUCT.ensemble_for(mask, "fast", {"layer": "subject"}) == "photo_mask_fast"
    assert PRODUCT.ensemble_for(mask, "fast", {"layer": None}) == "photo_mask_fast"  # the default: subject
    assert PRODUCT.ensemble_for(mask, "fast", {"layer": "background"}) == "photo_mask_fast"
    assert PRODUCT.ensemble_for(mask, "fast", {"layer": "hair"}) == "photo_mask_fast_faces"
    assert PRODUCT.ensemble_for(mask, "portrait", {"layer": "person"}) == "photo_mask_portrait_faces"
    assert PRODUCT.ensemble_for(mask, "auto", {"layer": "subject"}) == "photo_mask_auto"  # auto needs the faces
    assert PRODUCT.ensemble_for(cutout, "fast", {}) == "photo_cutout_fast"
    ensembles = {e.name: e for e in PRODUCT.ensembles()}
    assert not ensembles["photo_mask_fast"].with_faces and ensembles["photo_mask_fast_faces"].with_faces
    assert ensembles["photo_mask_auto"].with_faces and "photo_mask_auto_faces" not in ensembles
    assert (ensembles["photo_mask_fast"].label, ensembles["photo_mask_fast_faces"].label) == \
        ("mask_fast", "mask_fast_faces")


def test_a_count_the_ensemble_did_not_make_leaves_its_header_out() -> None:
    from contract.product import FACE_COUNT

    assert FACE_COUNT.render([-1.0]) == {} and FACE_COUNT.render([2.0]) == {"X-Faces": "2"}
