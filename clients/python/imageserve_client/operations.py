"""The client's operation tables, generated from the gateway's OpenAPI document: do not edit by hand.

Regenerate with ``python -m imageserve_client.codegen http://127.0.0.1:8080/openapi.json --out
clients/python/imageserve_client/operations.py`` (or from a saved document); tests/unit/test_python_client.py
fails while these differ from the document the gateway serves.
"""

from __future__ import annotations

from .spec import Operation, Param

OPERATIONS: dict[str, Operation] = {
    "depth": Operation(
        "depth", "POST", "/v1/depth",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
        ),
        headers=("X-Depth-Near", "X-Depth-Far"),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "mask": Operation(
        "mask", "POST", "/v1/mask",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
        ),
        headers=(
            "X-Matte-Refined",
            "X-Foreground-Left",
            "X-Foreground-Top",
            "X-Foreground-Width",
            "X-Foreground-Height",
        ),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "cutout": Operation(
        "cutout", "POST", "/v1/cutout",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
        ),
        headers=(
            "X-Matte-Refined",
            "X-Foreground-Left",
            "X-Foreground-Top",
            "X-Foreground-Width",
            "X-Foreground-Height",
        ),
        media_types=("image/png", "image/webp"),
    ),
    "background": Operation(
        "background", "POST", "/v1/background",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
            Param("color", "string", pattern="^#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$"),
            Param("blur", "number", minimum=0.5, maximum=250),
            Param("fit", "string", default="cover", enum=("cover", "contain")),
        ),
        parts=("background",),
        headers=(
            "X-Matte-Refined",
            "X-Foreground-Left",
            "X-Foreground-Top",
            "X-Foreground-Width",
            "X-Foreground-Height",
        ),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "bokeh": Operation(
        "bokeh", "POST", "/v1/bokeh",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
            Param("focus_x", "integer", minimum=0, maximum=40000000),
            Param("focus_y", "integer", minimum=0, maximum=40000000),
            Param("focus_depth", "number", minimum=0, maximum=1),
            Param("aperture", "number", default=4.0, minimum=0, maximum=10),
        ),
        headers=("X-Depth-Near", "X-Depth-Far"),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "adjust": Operation(
        "adjust", "POST", "/v1/adjust",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
            Param("by", "string", default="matte", enum=("matte", "depth")),
            Param("fg_brightness", "number", default=0.0, minimum=-1, maximum=1),
            Param("fg_contrast", "number", default=0.0, minimum=-1, maximum=1),
            Param("fg_saturation", "number", default=0.0, minimum=-1, maximum=1),
            Param("bg_brightness", "number", default=0.0, minimum=-1, maximum=1),
            Param("bg_contrast", "number", default=0.0, minimum=-1, maximum=1),
            Param("bg_saturation", "number", default=0.0, minimum=-1, maximum=1),
            Param("ramp_near", "number", default=0.7, minimum=0, maximum=1),
            Param("ramp_far", "number", default=0.3, minimum=0, maximum=1),
        ),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "crop": Operation(
        "crop", "POST", "/v1/crop",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
            Param("aspect", "string", pattern="^[1-9][0-9]{0,3}:[1-9][0-9]{0,3}$"),
            Param("width", "integer", minimum=1, maximum=8192),
            Param("height", "integer", minimum=1, maximum=8192),
        ),
        headers=("X-Crop-Box",),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "style": Operation(
        "style", "POST", "/v1/style",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
            Param(
                "style",
                "string",
                default="starry",
                enum=(
                    "golden-pastel",
                    "bold-lines",
                    "soft-sketch",
                    "shards",
                    "crimson-pastel",
                    "autumn",
                    "night-spots",
                    "flames",
                    "watercolour",
                    "mosaic",
                    "sepia-oil",
                    "ink-gold",
                    "lavender",
                    "cubist-green",
                    "frost",
                    "stained-glass",
                    "blue-impasto",
                    "bricks",
                    "etching",
                    "starry",
                    "fauve-red",
                    "pastel-blocks",
                    "charcoal",
                    "dark-wash",
                    "blue-etching",
                    "patchwork",
                ),
            ),
            Param("strength", "number", default=1.0, minimum=0, maximum=1),
            Param("keep", "string", default="none", enum=("none", "person")),
        ),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "upscale": Operation(
        "upscale", "POST", "/v1/upscale",
        params=(
            Param("model", "string", default="quality", enum=("quality", "sharp", "fast")),
            Param("scale", "integer", default=2, enum=(2, 4), minimum=2, maximum=4),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
        ),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "erase": Operation(
        "erase", "POST", "/v1/erase",
        params=(
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param("format", "string", default="auto", enum=("auto", "png", "webp", "jpeg")),
            Param("quality", "integer", default=90, minimum=1, maximum=100),
        ),
        parts=("mask",),
        media_types=("image/png", "image/webp", "image/jpeg"),
    ),
    "layers": Operation(
        "layers", "POST", "/v1/layers",
        params=(
            Param("model", "string", default="portrait", enum=("fast", "portrait", "object", "object-lite")),
            Param("max_side", "integer", default=0, minimum=0, maximum=8192),
            Param(
                "include",
                "string",
                default="depth,matte,foreground,background",
                pattern="^(depth|matte|foreground|background)(,(depth|matte|foreground|background))*$",
            ),
        ),
        media_types=("application/json",),
    ),
    "usage": Operation(
        "usage", "GET", "/v1/usage",
        params=(
            Param("days", "integer", default=30, minimum=1, maximum=366),
        ),
        media_types=("application/json",),
    ),
}
