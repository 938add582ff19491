"""The shape of the product declaration: operations, their parameters, variants, models, outputs and prices.

Only the standard library: the gateway, the converters (config generator), the Triton steps and the
load tests all import it. The declaration itself is ``contract.product.PRODUCT``; everything that
names an operation, a variant, an ensemble, a tensor or a limit derives it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PNG_GREY, PNG_RGBA = 0, 6  # PNG colour types of the image outputs


class ContractError(ValueError):
    """The declaration is inconsistent; the message names the entry and what to change."""


@dataclass(frozen=True)
class Limits:
    """Bounds shared by the gateway (checks before inference) and the Triton steps (checks on decode)."""

    max_pixels: int  # largest photo, in pixels
    max_output_side: int  # largest ``max_side`` a caller may ask for
    max_body_bytes: int  # largest upload


@dataclass(frozen=True)
class Parameter:
    """A query parameter of an operation, validated by the gateway and passed to the ensemble as a tensor."""

    name: str
    type: type  # int, float or str
    default: Any
    description: str
    tensor: str  # the ensemble input that carries it
    ge: float | None = None
    le: float | None = None
    example: Any = None


@dataclass(frozen=True)
class ImageOutput:
    """The image an operation answers with: the ensemble output tensor holding the encoded bytes."""

    tensor: str
    media_type: str
    description: str
    png_bit_depth: int
    png_colour_type: int


@dataclass(frozen=True)
class HeaderOutput:
    """A small float tensor of the ensemble returned as response headers, one value per header."""

    tensor: str
    headers: tuple[tuple[str, str], ...]  # (header name, description), in the tensor's order
    format: str = "{:.4f}"  # how each value is written in its header, e.g. "{:.0f}" for a 0/1 flag


@dataclass(frozen=True)
class Variant:
    """One way to compute an operation, chosen by the caller through the operation's variant parameter."""

    name: str
    models: tuple[str, ...]  # catalog models (converters/catalog.toml) this variant adds to the operation's
    description: str


@dataclass(frozen=True)
class Operation:
    """One endpoint ``POST {api_prefix}/{name}`` and its Triton ensemble(s).

    The ensemble graph is always: decode step -> every model of the operation (and of the chosen
    variant) -> compose step, which makes the outputs; ``uses_pixels`` also hands the decoded photo
    at the output size to the compose step.
    """

    name: str
    summary: str
    description: str
    output: ImageOutput
    base_credits: int
    models: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()
    default_variant: str = ""
    variant_parameter: str = "model"
    parameters: tuple[Parameter, ...] = ()
    header_outputs: tuple[HeaderOutput, ...] = ()
    uses_pixels: bool = False

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def variant(self, name: str) -> Variant | None:
        """The variant called ``name``; None for an operation without variants."""
        if not self.variants:
            return None
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ContractError(f"operation {self.name!r} has no variant {name!r}; it has {list(self.variant_names)}")

    def models_of(self, variant: str) -> tuple[str, ...]:
        chosen = self.variant(variant)
        return self.models + (chosen.models if chosen else ())

    @property
    def triton_outputs(self) -> tuple[str, ...]:
        return (self.output.tensor, *(h.tensor for h in self.header_outputs))


@dataclass(frozen=True)
class Ensemble:
    """One Triton ensemble: an operation computed one way."""

    name: str
    operation: Operation
    variant: str  # "" for an operation without variants
    models: tuple[str, ...]

    @property
    def label(self) -> str:
        """Short name for reports and load mixes, e.g. ``mask_fast``."""
        return f"{self.operation.name}_{self.variant}" if self.variant else self.operation.name


@dataclass(frozen=True)
class Tensors:
    """Names of the tensors between the gateway, the ensembles and the steps."""

    image: str  # encoded photo, BYTES [1, 1]
    max_side: str  # INT32 [1, 1]
    output_size: str  # (height, width) of the outputs, from the decode step
    pixels: str  # the decoded photo at the output size, uint8 (H, W, 3)
    model_outputs: dict[str, str]  # catalog ``output`` kind -> compose step input, e.g. "depth" -> "DEPTH"
    model_input_suffix: str  # decode step output feeding model M: M.upper() + suffix

    def model_input(self, model: str) -> str:
        return f"{model.upper()}{self.model_input_suffix}"


@dataclass(frozen=True)
class Product:
    """The whole product: every operation, the tensors, the limits, and the naming rules."""

    operations: tuple[Operation, ...]
    tensors: Tensors
    limits: Limits
    api_prefix: str
    ensemble_prefix: str
    decode_step: str
    compose_step: str
    per_megapixel_credits: float
    # Our steps start every message meant for the caller with this marker; the gateway echoes only those.
    step_error_marker: str
    _by_name: dict[str, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {op.name: op for op in self.operations}
        if len(by_name) != len(self.operations):
            raise ContractError("two operations share a name; each operation is declared once")
        for op in self.operations:
            if op.variants and op.default_variant not in op.variant_names:
                raise ContractError(f"operation {op.name!r}: default_variant {op.default_variant!r} is not one of "
                                    f"{list(op.variant_names)}")
            if not op.models_of(op.default_variant):
                raise ContractError(f"operation {op.name!r} uses no model; declare models or variants")
            names = [p.name for p in op.parameters] + ([op.variant_parameter] if op.variants else [])
            if len(set(names)) != len(names):
                raise ContractError(f"operation {op.name!r} declares a parameter twice: {names}")
        object.__setattr__(self, "_by_name", by_name)

    def operation(self, name: str) -> Operation:
        if name not in self._by_name:
            raise ContractError(f"unknown operation {name!r}; the product has {list(self._by_name)}")
        return self._by_name[name]

    @property
    def operation_names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def path(self, operation: Operation) -> str:
        return f"{self.api_prefix}/{operation.name}"

    def routes(self) -> dict[str, str]:
        """HTTP path -> operation name, for every operation."""
        return {self.path(op): op.name for op in self.operations}

    def ensemble_name(self, operation: Operation, variant: str) -> str:
        operation.variant(variant)  # refuses an unknown variant
        parts = [self.ensemble_prefix, operation.name, *([variant] if operation.variants else [])]
        return "_".join(parts)

    def ensembles(self) -> list[Ensemble]:
        """Every ensemble of the product, in declaration order."""
        found = []
        for op in self.operations:
            for variant in op.variant_names or ("",):
                found.append(Ensemble(self.ensemble_name(op, variant), op, variant, op.models_of(variant)))
        return found

    def models(self) -> list[str]:
        """Every catalog model some operation uses, in order of first use."""
        return list(dict.fromkeys(m for e in self.ensembles() for m in e.models))

    def image_outputs(self) -> list[ImageOutput]:
        return list({op.output.tensor: op.output for op in self.operations}.values())

    def header_outputs(self) -> list[HeaderOutput]:
        return list({h.tensor: h for op in self.operations for h in op.header_outputs}.values())
