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

MATTE_REFINED = HeaderOutput("MATTE_REFINED", (
    ("X-Matte-Refined", "1: the matte was refined at the output size against the photo (and a cutout's edge "
                        "colours estimated); 0: the plain upsampled matte and the photo's colours (an output over "
                        "the refinement's pixel bound, or the refinement could not run)"),
), format="{:.0f}")

MATTE_VARIANTS = (
    Variant("fast", ("matte_fast",), "MediaPipe selfie segmentation: person only, coarse edges; ~2 ms of model time"),
    Variant("portrait", ("matte_portrait",), "MODNet portrait matting, the default: people, with soft edges and "
                                             "hair; ~120 ms of model time on 2 CPU cores"),
    Variant("object", ("matte_object",), "U2-Net: the salient object (a person, a pet, a product), clean edges; "
                                         "~320 ms of model time on 2 CPU cores, the slowest"),
    Variant("object-lite", ("matte_object_lite",), "U2-Netp, the small U2-Net: the salient object, less accurate "
                                                   "than object; ~140 ms of model time on 2 CPU cores"),
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
            output=MASK_PNG, base_credits=1, variants=MATTE_VARIANTS, default_variant="portrait",
            parameters=(MAX_SIDE,), header_outputs=(MATTE_REFINED,), uses_pixels=True,
        ),
        Operation(
            "cutout", "The person cut out as an RGBA PNG",
            "RGBA PNG: the photo with the matte as alpha; colour under alpha 0 is zeroed.",
            output=CUTOUT_PNG, base_credits=2, variants=MATTE_VARIANTS, default_variant="portrait",
            parameters=(MAX_SIDE,), header_outputs=(MATTE_REFINED,), uses_pixels=True,
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
