"""The product, declared once: every operation, variant, model, parameter, output, price, tensor and limit.

The gateway's routes, query validation, OpenAPI, prices, ``/readyz`` and metric labels, the Triton
ensembles and step configs of both targets, the load-test mix and the README's API table are all
derived from ``PRODUCT``. Adding a variant or an operation is an entry here plus the step code it needs.
"""

from __future__ import annotations

from contract.schema import (
    PNG_GREY,
    PNG_RGBA,
    HeaderOutput,
    ImageOutput,
    Limits,
    Operation,
    Parameter,
    Product,
    Tensors,
    Variant,
)

TENSORS = Tensors(
    image="IMAGE",
    max_side="MAX_SIDE",
    output_size="OUTPUT_SIZE",
    pixels="RGB",
    model_outputs={"depth": "DEPTH", "alpha": "ALPHA"},
    model_input_suffix="_INPUT",
)

LIMITS = Limits(max_pixels=40_000_000, max_output_side=8192, max_body_bytes=30 * 1024 * 1024)

MAX_SIDE = Parameter(
    "max_side", int, 0, "Longest side of the output in pixels; 0 keeps the photo's size",
    tensor=TENSORS.max_side, ge=0, le=LIMITS.max_output_side, example=1024,
)

DEPTH_PNG = ImageOutput("DEPTH_PNG", "image/png", "16-bit greyscale PNG, near = bright", 16, PNG_GREY)
MASK_PNG = ImageOutput("MASK_PNG", "image/png", "8-bit alpha matte PNG", 8, PNG_GREY)
CUTOUT_PNG = ImageOutput("CUTOUT_PNG", "image/png", "RGBA PNG: the photo with the matte as alpha", 8, PNG_RGBA)

DEPTH_RANGE = HeaderOutput("DEPTH_RANGE", (
    ("X-Depth-Near", "Depth in metres of the brightest pixel (65535)"),
    ("X-Depth-Far", "Depth in metres of black (0)"),
))

SEGMENTATION_VARIANTS = (
    Variant("fast", ("segmentation_fast",), "MediaPipe selfie segmentation: person only, ~2 ms of model time"),
    Variant("quality", ("segmentation_quality",), "U2-Netp: salient object, cleaner edges"),
)

PRODUCT = Product(
    operations=(
        Operation(
            "depth", "Depth map as a 16-bit PNG (near = bright)",
            "16-bit greyscale PNG, linear in depth: ``d = far - pixel / 65535 * (far - near)``, with ``near``/"
            "``far`` (metres, from the model) in the ``X-Depth-Near``/``X-Depth-Far`` headers.",
            output=DEPTH_PNG, base_credits=1, models=("depth",), parameters=(MAX_SIDE,),
            header_outputs=(DEPTH_RANGE,),
        ),
        Operation(
            "mask", "Person alpha matte as an 8-bit PNG", "8-bit alpha matte at the output size.",
            output=MASK_PNG, base_credits=1, variants=SEGMENTATION_VARIANTS, default_variant="fast",
            parameters=(MAX_SIDE,),
        ),
        Operation(
            "cutout", "The person cut out as an RGBA PNG",
            "RGBA PNG: the photo with the matte as alpha; colour under alpha 0 is zeroed.",
            output=CUTOUT_PNG, base_credits=2, variants=SEGMENTATION_VARIANTS, default_variant="fast",
            parameters=(MAX_SIDE,), uses_pixels=True,
        ),
    ),
    tensors=TENSORS,
    limits=LIMITS,
    api_prefix="/v1",
    ensemble_prefix="photo",
    decode_step="preprocess",
    compose_step="postprocess",
    per_megapixel_credits=1.0,
    step_error_marker="imageserve: ",
)
