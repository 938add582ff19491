"""The shape of the product declaration: operations, their parameters, variants, models, outputs and prices.

Only the standard library: the gateway, the converters (config generator), the Triton steps and the
load tests all import it. The declaration itself is ``contract.product.PRODUCT``; everything that
names an operation, a variant, an ensemble, a tensor or a limit derives it from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PNG_GREY, PNG_RGB, PNG_RGBA = 0, 2, 6  # PNG colour types of the image outputs
# The ensemble step a parameter is handed to; "model": the operation's pixel model (a catalog model with output
# "rgb", which maps the decoded photo to new pixels: upscaling, style transfer).
STEPS = ("decode", "compose", "model")
FACES_SUFFIX = "_faces"  # an ensemble that runs the faces step beside a twin without it (Operation.faces_for)
SUBJECTS = ("object", "person")  # what a matte shows, in the order of the SUBJECT tensor's values (0, 1)


class ContractError(ValueError):
    """The declaration is inconsistent; the message names the entry and what to change."""


@dataclass(frozen=True)
class Limits:
    """Bounds shared by the gateway (checks before inference) and the Triton steps (checks on decode)."""

    max_pixels: int  # largest photo, in pixels
    max_output_side: int  # largest ``max_side`` a caller may ask for
    max_body_bytes: int  # largest upload
    max_upscaled_pixels: int  # largest result of an operation that enlarges the photo (``Operation.output_scale``)


@dataclass(frozen=True)
class Parameter:
    """A query parameter of an operation, validated by the gateway and passed to the ensemble as a tensor.

    ``choices`` lists the accepted values (text or whole numbers, e.g. scale 2 or 4).
    ``default=None`` makes it optional with no default: when the caller leaves it out, the step gets
    ``unset`` (-1 for numbers, "" for text) and decides (e.g. bokeh's focus: the subject).
    A text parameter is checked against ``choices`` or the full-match regular expression ``pattern``
    (``pattern_hint`` says in words what it accepts, for the caller's error message).
    """

    name: str
    type: type  # int, float or str
    default: Any
    description: str
    tensor: str  # the ensemble input that carries it
    ge: float | None = None
    le: float | None = None
    example: Any = None
    step: str = "compose"  # which ensemble step receives it: "decode" or "compose"
    choices: tuple[Any, ...] = ()
    pattern: str = ""
    pattern_hint: str = ""

    def __post_init__(self) -> None:
        if self.type not in (int, float, str):
            raise ContractError(f"parameter {self.name!r}: type must be int, float or str, not {self.type}")
        if self.step not in STEPS:
            raise ContractError(f"parameter {self.name!r}: step {self.step!r} is not one of {STEPS}")
        if self.pattern:
            re.compile(self.pattern)
        if self.pattern and self.type is not str:
            raise ContractError(f"parameter {self.name!r}: a pattern is for text parameters")
        if any(type(choice) is not self.type for choice in self.choices) or self.type is float and self.choices:
            raise ContractError(f"parameter {self.name!r}: choices must be of its type (text or int)")
        if self.type is not str and (self.ge is None or self.le is None):
            raise ContractError(f"parameter {self.name!r}: a number needs both bounds (ge, le), so that every value "
                                "the gateway accepts fits its tensor")

    @property
    def unset(self) -> Any:
        """The tensor value that means "not given" for an optional parameter."""
        return "" if self.type is str else self.type(-1)

    def check_text(self, value: str) -> str | None:
        """Why ``value`` is not accepted (a message naming the parameter and an example), or None."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value[:40]!r}"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"{self.name} must be {self.pattern_hint}, e.g. {self.name}={self.example}; got {value[:40]!r}"
        return None


@dataclass(frozen=True)
class ImagePart:
    """A second image an operation accepts as a multipart field beside ``image`` (e.g. a new background).

    It passes the same header checks and limits as the photo and reaches its ``step`` (the compose step, or
    "model": the operation's pixel model), encoded, in ``tensor``; an absent part is sent as empty bytes.
    """

    name: str  # the multipart field
    tensor: str
    description: str
    step: str = "compose"

    def __post_init__(self) -> None:
        if self.step not in ("compose", "model"):
            raise ContractError(f"image part {self.name!r}: step {self.step!r}, expected compose or model")


@dataclass(frozen=True)
class ImageOutput:
    """The result an operation answers with: the ensemble output tensor holding the encoded bytes.

    An image result is encoded as the caller's ``format`` (one of ``Product.formats``); its PNG form has
    ``png_bit_depth`` and ``png_colour_type``. A JSON result (``media_type`` application/json) has neither.
    """

    tensor: str
    description: str
    png_bit_depth: int = 8
    png_colour_type: int = PNG_RGB
    media_type: str = "image/png"  # the media type when no format is chosen

    @property
    def transparent(self) -> bool:
        """The result always has an alpha channel, so JPEG cannot carry it."""
        return self.png_colour_type == PNG_RGBA


@dataclass(frozen=True)
class HeaderOutput:
    """A small float tensor of the ensemble returned as response headers, one value per header."""

    tensor: str
    headers: tuple[tuple[str, str], ...]  # (header name, description), in the tensor's order
    format: str = "{:.4f}"  # how each value is written in its header, e.g. "{:.0f}" for a 0/1 flag
    size: int = 0  # values in the tensor; 0: one per header
    join: str = ""  # with one header: all ``size`` values in it, joined by this (e.g. X-Crop-Box: x,y,w,h)
    # Words for whole-number values: value i is written as labels[i] (e.g. X-Subject: person); a negative value
    # means "not decided by the ensemble" and leaves the header out.
    labels: tuple[str, ...] = ()
    # A negative value means "not known by this ensemble" (a count it did not make) and leaves the header out.
    unknown_below_zero: bool = False

    @property
    def values(self) -> int:
        return self.size or len(self.headers)

    def render(self, values: list[float]) -> dict[str, str]:
        """The response headers for the tensor's values."""
        if self.join:
            return {self.headers[0][0]: self.join.join(self.format.format(v) for v in values)}
        if self.labels:
            return {name: self.labels[int(v)] for (name, _), v in zip(self.headers, values, strict=False)
                    if 0 <= v < len(self.labels)}
        return {name: self.format.format(v) for (name, _), v in zip(self.headers, values, strict=False)
                if not (self.unknown_below_zero and v < 0)}


@dataclass(frozen=True)
class Variant:
    """One way to compute an operation, chosen by the caller through the operation's variant parameter."""

    name: str
    models: tuple[str, ...]  # catalog models (converters/catalog.toml) this variant adds to the operation's
    description: str
    # What the matte shows: "person" or "object"; "" for a variant that decides per photo (``by_faces``) or
    # makes no matte.
    subject: str = ""
    # Choose per photo by the faces found (``Product.faces_step``): the first model when the photo shows a face,
    # else the second; the choice runs in the step ``matte_<name>``, which calls only the chosen model.
    by_faces: bool = False
    # A person-only catalog model run beside the person matte (with by_faces: when the portrait matte is chosen):
    # the matte is kept only near the person it sees (``imaging.person_gate``).
    gate: str = ""

    def __post_init__(self) -> None:
        if self.by_faces and (len(self.models) != 2 or self.subject):
            raise ContractError(f"variant {self.name!r}: by_faces needs two models (with a face, without) and no "
                                "fixed subject")
        if self.gate and not (self.by_faces or self.subject == "person"):
            raise ContractError(f"variant {self.name!r}: a gate keeps a person matte near the person; declare it "
                                "on a variant with subject 'person' or by_faces")
        if self.gate in self.models:
            raise ContractError(f"variant {self.name!r}: its gate {self.gate!r} is one of its own mattes")
        if self.subject and self.subject not in SUBJECTS:
            raise ContractError(f"variant {self.name!r}: subject must be one of {SUBJECTS} or empty (a variant "
                                f"that makes no matte), not {self.subject!r}")

    @property
    def served_models(self) -> tuple[str, ...]:
        """Its mattes and its gate: every model the variant needs served."""
        return (*self.models, self.gate) if self.gate else self.models


@dataclass(frozen=True)
class Operation:
    """One endpoint ``POST {api_prefix}/{name}`` and its Triton ensemble(s).

    The ensemble graph is always: decode step -> every model of the operation (and of the chosen
    variant) -> compose step, which makes the outputs; ``uses_pixels`` also hands the decoded photo
    at the output size to the compose step. With ``uses_faces`` or a by-faces variant the faces step runs on
    the decoded photo too, and a by-faces variant's models are called by its choice step, not run as steps.
    ``one_of`` lists alternatives of which the caller gives exactly one (each a group of parameter or image-part
    names given together, e.g. ``("width", "height")``); with ``one_of_required`` False, at most one (none leaves
    the step its default).
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
    image_parts: tuple[ImagePart, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    one_of_required: bool = True
    # An int parameter by which the result's sides grow (upscaling): the price counts the result's megapixels,
    # and the result must stay within ``Limits.max_upscaled_pixels``.
    output_scale: str = ""
    # The faces step (``Product.faces_step``) runs and hands the faces found to the compose step.
    uses_faces: bool = False
    # An image part that makes the variants unnecessary: sent, it is served by the ensemble without any variant
    # (``{prefix}_{name}``, the operation's own models only); the variants serve the alternative (erase: an
    # uploaded mask, or a tap through the selection, which needs a matte).
    plain_with: str = ""
    # Catalog models a step of the operation calls through Triton (``triton_models.model_calls``) rather than
    # running as ensemble steps: served, ready-checked and counted as the operation's (the style step's
    # predictor and transform for a style image).
    called_models: tuple[str, ...] = ()
    # (parameter, its values that need the faces step) for an operation with ``uses_faces`` whose other results
    # do not: each variant that is not by-faces gets a second ensemble without the faces step, which serves the
    # requests with any other value (the face headers are then left out). /v1/mask: only its face layers and
    # ``person`` need the faces; a subject matte with a fixed variant does not pay for them.
    faces_for: tuple[str, tuple[str, ...]] = ()

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def variant(self, name: str) -> Variant | None:
        """The variant called ``name``; None for an operation without variants, or "" with ``plain_with``."""
        if not self.variants or (self.plain_with and not name):
            return None
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ContractError(f"operation {self.name!r} has no variant {name!r}; it has {list(self.variant_names)}")

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def step_parameters(self, step: str) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.step == step)

    @property
    def input_tensors(self) -> tuple[str, ...]:
        """The ensemble's inputs beside the photo: every parameter's and image part's tensor."""
        return (*(p.tensor for p in self.parameters), *(part.tensor for part in self.image_parts))

    def models_of(self, variant: str) -> tuple[str, ...]:
        """The models the ensemble of ``variant`` runs as steps."""
        chosen = self.variant(variant)
        return self.models + (chosen.served_models if chosen else ())

    def parts_of(self, step: str) -> tuple[ImagePart, ...]:
        return tuple(part for part in self.image_parts if part.step == step)

    def needs_faces(self, variant: str) -> bool:
        """The (first) ensemble of ``variant`` runs the faces step (for the compose step, or to choose the
        matte)."""
        chosen = self.variant(variant)
        if chosen is None and self.plain_with:
            return False
        return self.uses_faces or bool(chosen and chosen.by_faces)

    def has_plain_twin(self, variant: str) -> bool:
        """``variant`` also has an ensemble without the faces step (``faces_for``)."""
        chosen = self.variant(variant)
        return bool(self.faces_for) and self.uses_faces and not (chosen and chosen.by_faces)

    def wants_faces(self, values: dict[str, object]) -> bool:
        """Whether a request with these parameter values (None: not given) needs the faces step, by
        ``faces_for``."""
        name, needing = self.faces_for
        value = values.get(name)
        return (self.parameter(name).default if value is None else value) in needing

    @property
    def variants_of_ensembles(self) -> tuple[str, ...]:
        """The variant of each of its ensembles ("" for the one without)."""
        return (*(("",) if self.plain_with else ()), *(self.variant_names or ("",)))

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
    with_faces: bool = False  # it runs the faces step

    @property
    def label(self) -> str:
        """Short name for reports and load mixes, e.g. ``mask_fast`` (``mask_fast_faces``: the twin with the
        faces step, ``Operation.faces_for``)."""
        label = f"{self.operation.name}_{self.variant}" if self.variant else self.operation.name
        return f"{label}{FACES_SUFFIX}" if self.with_faces and self.operation.has_plain_twin(self.variant) else label


@dataclass(frozen=True)
class Tensors:
    """Names of the tensors between the gateway, the ensembles and the steps."""

    image: str  # encoded photo, BYTES [1, 1]
    max_side: str  # INT32 [1, 1]
    output_size: str  # (height, width) of the outputs, from the decode step
    photo_size: str  # (height, width) of the upright photo, from the decode step
    pixels: str  # the decoded photo at the output size, uint8 (H, W, 3)
    model_outputs: dict[str, str]  # catalog ``output`` kind -> compose step input, e.g. "depth" -> "DEPTH"
    model_input_suffix: str  # decode step output feeding model M: M.upper() + suffix
    faces: str  # the faces step's output: every face found, packed (imaging.faces.pack), FP32 [max_faces, values]
    matte_subject: str  # a by-faces matte step's choice, an index into SUBJECTS, FP32 [1]
    matte_gate: str  # a variant's gate model's person matte, to the compose step (``Variant.gate``)

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
    # After the marker, this says the message is about a parameter (a 400), not the image (a 422).
    parameter_error_prefix: str
    formats: dict[str, str]  # output format -> media type, for every image result

    # The python step that finds faces in the decoded photo, calling ``face_models`` (detector, landmarks, irises)
    # through Triton, for operations with ``uses_faces`` and by-faces variants.
    faces_step: str
    face_models: tuple[str, ...]
    max_faces: int  # faces the faces step reports at most (the largest first)
    _by_name: dict[str, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {op.name: op for op in self.operations}
        if len(by_name) != len(self.operations):
            raise ContractError("two operations share a name; each operation is declared once")
        for op in self.operations:
            if op.variants and op.default_variant not in op.variant_names:
                raise ContractError(f"operation {op.name!r}: default_variant {op.default_variant!r} is not one of "
                                    f"{list(op.variant_names)}")
            if not op.models_of(op.default_variant) and not op.uses_pixels:
                raise ContractError(f"operation {op.name!r} uses neither a model nor the photo's pixels")
            scale = op.parameter(op.output_scale) if op.output_scale else None
            if op.output_scale and (scale is None or scale.type is not int or scale.default is None):
                raise ContractError(f"operation {op.name!r}: output_scale {op.output_scale!r} must name one of its "
                                    "int parameters with a default")
            names = [p.name for p in op.parameters] + ([op.variant_parameter] if op.variants else [])
            names += [part.name for part in op.image_parts]
            if len(set(names)) != len(names):
                raise ContractError(f"operation {op.name!r} declares a parameter twice: {names}")
            self._check_one_of(op)
            self._check_faces_for(op)
            if op.plain_with and (op.plain_with not in {part.name for part in op.image_parts} or not op.variants):
                raise ContractError(f"operation {op.name!r}: plain_with {op.plain_with!r} must name one of its image "
                                    "parts, and the operation needs variants for the alternative")
            tensors = [self.tensors.image, *op.input_tensors, *op.triton_outputs]
            if len(set(tensors)) != len(tensors):
                raise ContractError(f"operation {op.name!r}: its ensemble's inputs and outputs {tensors} must have "
                                    "distinct tensor names")
        object.__setattr__(self, "_by_name", by_name)

    @staticmethod
    def _check_faces_for(op: Operation) -> None:
        if not op.faces_for:
            return
        name, needing = op.faces_for
        parameter = op.parameter(name)
        if not op.uses_faces or parameter is None or parameter.default is None \
                or not set(needing) <= set(parameter.choices):
            raise ContractError(f"operation {op.name!r}: faces_for needs uses_faces and a parameter with a default "
                                f"and choices that include {list(needing)}; {name!r} is not")

    @staticmethod
    def _check_one_of(op: Operation) -> None:
        parts = {part.name for part in op.image_parts}
        for group in op.one_of:
            for name in group:
                parameter = op.parameter(name)
                # A default means "this alternative when none is given": only where none may be given.
                if name not in parts and (parameter is None or (parameter.default is not None
                                                                and op.one_of_required)):
                    raise ContractError(f"operation {op.name!r}: one_of names {name!r}, which is neither an image "
                                        f"part nor a parameter without default (default=None; a default is allowed "
                                        f"with one_of_required=False)")

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

    def ensemble_name(self, operation: Operation, variant: str, with_faces: bool = True) -> str:
        """The ensemble of ``variant``; ``with_faces=False``: its twin without the faces step, where it has one
        (``Operation.faces_for``)."""
        operation.variant(variant)  # refuses an unknown variant
        parts = [self.ensemble_prefix, operation.name, *([variant] if operation.variants and variant else [])]
        twin = operation.has_plain_twin(variant)
        return "_".join(parts) + (FACES_SUFFIX if twin and with_faces else "")

    def ensemble_for(self, operation: Operation, variant: str, values: dict[str, object]) -> str:
        """The ensemble that serves a request with these parameter values."""
        plain = operation.has_plain_twin(variant) and not operation.wants_faces(values)
        return self.ensemble_name(operation, variant, with_faces=not plain)

    def ensembles(self) -> list[Ensemble]:
        """Every ensemble of the product, in declaration order."""
        found = []
        for op in self.operations:
            for variant in op.variants_of_ensembles:
                models = op.models_of(variant)
                if op.has_plain_twin(variant):
                    found.append(Ensemble(self.ensemble_name(op, variant, with_faces=False), op, variant, models))
                found.append(Ensemble(self.ensemble_name(op, variant), op, variant, models, op.needs_faces(variant)))
        return found

    def models(self) -> list[str]:
        """Every catalog model some operation uses, in order of first use (the face models last)."""
        found = [m for e in self.ensembles() for m in (*e.models, *e.operation.called_models)]
        return list(dict.fromkeys(found + (list(self.face_models) if self.faces_used() else [])))

    def models_called_by(self, ensemble: Ensemble) -> list[str]:
        """Every model an ensemble needs: its own model steps and the models its steps call (the faces step's
        networks, a by-faces variant's mattes, ``Operation.called_models``)."""
        faces = list(self.face_models) if ensemble.with_faces else []
        return [*ensemble.models, *ensemble.operation.called_models, *faces]

    def faces_used(self) -> bool:
        return any(e.with_faces for e in self.ensembles())

    def by_faces_variants(self) -> list[Variant]:
        """Every by-faces variant, once per name: each is one step ``matte_<name>``."""
        return list({v.name: v for op in self.operations for v in op.variants if v.by_faces}.values())

    def choice_step(self, variant: Variant) -> str:
        return f"matte_{variant.name}"

    def compose_parameters(self) -> list[Parameter]:
        """Every parameter any operation hands to the compose step, once per tensor."""
        found = [p for op in self.operations for p in op.step_parameters("compose")]
        return list({p.tensor: p for p in found}.values())

    def model_parameters(self, model: str) -> list[Parameter]:
        """Every parameter handed to the pixel model ``model`` (step "model") by the operations that use it."""
        found = [p for e in self.ensembles() if model in e.models for p in e.operation.step_parameters("model")]
        return list({p.tensor: p for p in found}.values())

    def model_parts(self, model: str) -> list[ImagePart]:
        """Every image part handed to the pixel model ``model`` (step "model") by the operations that use it."""
        found = [part for e in self.ensembles() if model in e.models for part in e.operation.parts_of("model")]
        return list({part.tensor: part for part in found}.values())

    def model_calls(self, model: str) -> tuple[str, ...]:
        """The models the pixel model ``model``'s step calls: those of the operations using it."""
        found = [m for e in self.ensembles() if model in e.models for m in e.operation.called_models]
        return tuple(dict.fromkeys(found))

    def image_parts(self) -> list[ImagePart]:
        """Every image part the compose step takes."""
        return list({part.tensor: part for op in self.operations for part in op.parts_of("compose")}.values())

    def image_outputs(self) -> list[ImageOutput]:
        return list({op.output.tensor: op.output for op in self.operations}.values())

    def header_outputs(self) -> list[HeaderOutput]:
        return list({h.tensor: h for op in self.operations for h in op.header_outputs}.values())
