"""The compose step's work, without Triton: model outputs, the photo and parameters -> the requested results.

``postprocess`` reads the tensors into a ``Scene`` and a ``Values``, calls ``compose`` and writes the results
back. Everything here is plain numpy over ``imaging``, so the unit tests run it without a Triton server.

Each result is computed from the same matte (refined once, ``imaging.matte.layers``) and the same depth
(upsampled against the photo and fused with that matte once, ``imaging.depth.follow_photo``), whichever and
however many outputs a request asks for; ``/v1/layers`` is therefore equal to the separate calls.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from contract import product as P
from contract.schema import Parameter
from imaging import adjust as tone
from imaging import background as backdrop
from imaging import depth as depth_map
from imaging import erase as eraser
from imaging import select as selection
from imaging import style as styling
from imaging.bokeh import bokeh
from imaging.crop import crop_box, largest_box
from imaging.decode import Photo
from imaging.encode import encode
from imaging.errors import ImageError, ParameterError
from imaging.face_layers import face_layers
from imaging.faces import Face, faces_json, scaled
from imaging.matte import Layers, layers
from imaging.outputs import UINT16_MAX, cutout_rgba, matte_to_uint8

SUBJECT = 0.5  # matte value above which a pixel is the subject
MIN_SUBJECT_FRACTION = 0.005  # a matte covering less of the photo is "no subject"
FOCUS_WINDOW = 7  # side of the window whose median nearness is the focal plane at a focus point
FOREGROUND_ALPHA = 13  # of 255: the foreground box bounds the matte from 5 % (a matte's faint haze is not in it)
PORTRAIT_DEFOCUS = 0.4  # focused on the subject: the backdrop is at least this much farther (nearness units)
# A tap on several face layers selects the smallest part under it.
FINEST_FIRST = ("irises", "eyes", "brows", "lips", "mouth", "face", "hair")
# Results that show the subject over something else: they need its estimated edge colours.
SHOWS_SUBJECT = {P.CUTOUT_IMAGE.tensor, P.BACKGROUND_IMAGE.tensor, P.LAYERS_JSON.tensor}


@dataclass
class Scene:
    """One request's inputs at the output size: everything computed from them is computed once."""

    size: tuple[int, int]  # (width, height) of the outputs
    photo_size: tuple[int, int]  # (width, height) of the upright photo
    rgb: np.ndarray | None  # uint8 (H, W, 3)
    model_alpha: np.ndarray | None  # the matte model's output (h, w)
    model_depth: np.ndarray | None  # the depth model's output (h, w), larger = farther
    model_rgb: np.ndarray | None = None  # a pixel model's output, uint8 (h, w, 3): styled or upscaled pixels
    faces: list[Face] | None = None  # the faces step's finds, in pixels of the output (None: it did not run)
    subject_kind: int = -1  # a by-faces matte step's choice (an index into SUBJECTS); -1: the variant's own
    colours: bool = True  # estimate the subject's edge colours (only results that show the subject need them)
    warn: list[str] = field(default_factory=list)  # why a refinement fell back, for the step's log

    def _layers(self, colours: bool) -> Layers:
        if self.model_alpha is None:
            raise ImageError("this result needs a matte, and the ensemble sent none")
        result = layers(np.clip(_finite(self.model_alpha), 0, 1), self.size, self.rgb, colours=colours)
        if result.failed:
            self.warn.append(f"plain matte for a {self.size[0]}x{self.size[1]} output: {result.fallback}")
        return result

    @cached_property
    def matte(self) -> Layers:
        """The refined matte with the subject's estimated edge colours (when the photo was sent)."""
        return self._layers(colours=self.colours and self.rgb is not None)

    @property
    def photo(self) -> np.ndarray:
        if self.rgb is None:
            raise ImageError("this result needs the photo, and the ensemble sent none")
        return self.rgb

    @cached_property
    def depth(self) -> depth_map.DepthResult:
        if self.model_depth is None:
            raise ImageError("this result needs depth, and the ensemble sent none")
        matte = self.matte.alpha if self.model_alpha is not None else None
        return depth_map.follow_photo(_finite(self.model_depth), self.size, self.rgb, matte)

    @cached_property
    def nearness(self) -> np.ndarray:
        """float32 (H, W) in [0, 1], 1 = nearest: the depth PNG's scale."""
        return depth_map.nearness(self.depth.depth, self.depth.near, self.depth.far)

    @property
    def pixels(self) -> np.ndarray:
        if self.model_rgb is None:
            raise ImageError("this result needs a pixel model's output, and the ensemble sent none")
        return self.model_rgb

    @property
    def found_faces(self) -> list[Face]:
        if self.faces is None:
            raise ImageError("this result needs the faces step's output, and the ensemble sent none")
        return self.faces

    @cached_property
    def face_parts(self) -> dict[str, np.ndarray]:
        """Every face-part layer (``FACE_LAYER_NAMES``), 8-bit at the output size; all zero without a face."""
        return face_layers(self.found_faces, self.size, self.matte.alpha)

    @property
    def person(self) -> np.ndarray:
        """The matte as 8-bit when the photo shows a person (a face was found), else empty."""
        alpha = matte_to_uint8(self.matte.alpha)
        return alpha if self.found_faces else np.zeros_like(alpha)

    def mask_layer(self, name: str) -> np.ndarray:
        """One of ``MASK_LAYERS`` (also the image layers of /v1/layers that are masks), 8-bit."""
        if name == "subject" or name == "matte":
            return matte_to_uint8(self.matte.alpha)
        if name == "person":
            return self.person
        if name == "background":
            return 255 - matte_to_uint8(self.matte.alpha)
        return self.face_parts[name]

    @property
    def subject(self) -> np.ndarray | None:
        """The subject's pixels (matte above ``SUBJECT``), None when the matte holds almost nothing."""
        inside = self.matte.alpha > SUBJECT
        return inside if inside.mean() >= MIN_SUBJECT_FRACTION else None


def _finite(plane: np.ndarray) -> np.ndarray:
    """The model's map with any NaN or infinity (a broken model, or a warm-up's random bytes) made the median
    of the finite values, so one bad value cannot turn the whole scale (near, far) into NaN."""
    ok = np.isfinite(plane)
    if ok.all():
        return plane
    return np.where(ok, plane, np.float32(np.median(plane[ok])) if ok.any() else np.float32(0)).astype(np.float32)


class Values:
    """The request's parameters by declaration: ``get`` gives None for an optional one left out."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw  # tensor name -> the scalar it carried

    def get(self, parameter: Parameter) -> Any:
        value = self._raw.get(parameter.tensor)
        if value is None:
            return parameter.default
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = parameter.type(value)
        return None if parameter.default is None and value == parameter.unset else value

    def output_format(self) -> str:
        chosen = self.get(P.FORMAT)
        return "png" if chosen == "auto" else chosen


def _encode(pixels: np.ndarray, values: Values, compress_level: int) -> bytes:
    return encode(pixels, values.output_format(), values.get(P.QUALITY), compress_level)


def _depth_pixels(scene: Scene) -> np.ndarray:
    return np.rint(scene.nearness * UINT16_MAX).astype(np.uint16)


def _png(pixels: np.ndarray, compress_level: int) -> bytes:
    return encode(pixels, "png", P.QUALITY.default, compress_level)


def _cutout(scene: Scene) -> np.ndarray:
    matte = scene.matte
    return cutout_rgba(matte.colour if matte.colour is not None else scene.photo, matte_to_uint8(matte.alpha))


def _background_layer(scene: Scene) -> np.ndarray:
    """The photo with the subject made transparent: alpha = 1 - matte, colour zeroed where alpha is 0."""
    return cutout_rgba(scene.photo, 255 - matte_to_uint8(scene.matte.alpha))


def _colour(text: str) -> tuple[int, int, int, int]:
    digits = text.lstrip("#")
    rgba = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
    return (*rgba, 255)[:4] if len(rgba) == 3 else tuple(rgba)  # type: ignore[return-value]


def _new_background(scene: Scene, values: Values, part: bytes, max_pixels: int) -> np.ndarray:
    colour, alpha = scene.matte.colour if scene.matte.colour is not None else scene.photo, scene.matte.alpha
    if part:
        image = np.asarray(Photo(part, max_pixels).decode(min_size=scene.size), dtype=np.uint8)
        return backdrop.over_image(colour, alpha, backdrop.fit(image, scene.size, values.get(P.FIT)))
    if (radius := values.get(P.BLUR)) is not None:
        return backdrop.blur_behind(scene.photo, colour, alpha, radius)
    if (text := values.get(P.COLOR)) is not None:
        rgba = _colour(text)
        if rgba[3] < 255 and values.output_format() == "jpeg":
            raise ParameterError(f"color {text} has alpha {rgba[3]:02x}, which JPEG cannot carry; use format=png "
                                 "or format=webp, or an opaque colour (RRGGBB)")
        return backdrop.over_colour(colour, alpha, rgba)
    raise ParameterError("give exactly one of color, blur or a multipart part named background")


def _focus(scene: Scene, values: Values) -> float:
    """The focal plane's nearness: at the focus point, the focus depth, or the subject's median."""
    x, y, depth = values.get(P.FOCUS_X), values.get(P.FOCUS_Y), values.get(P.FOCUS_DEPTH)
    if (x is None) != (y is None):
        raise ParameterError("give focus_x and focus_y together (a point of the upright photo), or neither")
    if x is not None and depth is not None:
        raise ParameterError("give a focus point (focus_x, focus_y) or focus_depth, not both")
    if x is not None:
        width, height = scene.photo_size
        if x >= width or y >= height:
            raise ParameterError(f"the focus point ({x}, {y}) is outside the upright photo of {width}x{height}; "
                                 f"give 0 <= focus_x < {width} and 0 <= focus_y < {height}")
        col = min(int(x * scene.size[0] / width), scene.size[0] - 1)
        row = min(int(y * scene.size[1] / height), scene.size[1] - 1)
        half = FOCUS_WINDOW // 2
        window = scene.nearness[max(0, row - half):row + half + 1, max(0, col - half):col + half + 1]
        return float(np.median(window))
    if depth is not None:
        return float(depth)
    subject = scene.subject if scene.model_alpha is not None else None
    if subject is None:  # no subject: the nearest tenth of the photo
        return float(np.percentile(scene.nearness, 90))
    return float(np.median(scene.nearness[subject]))


def _bokeh(scene: Scene, values: Values) -> np.ndarray:
    """Depth of field at the chosen focal plane. Focused on the subject (the default), the backdrop is put at
    least ``PORTRAIT_DEFOCUS`` behind it, as a phone's portrait mode blurs the whole backdrop: a fused depth
    map puts the backdrop just behind the subject where they meet, which alone would leave it nearly sharp
    there. A focus point or depth uses the depth as it is."""
    focus = _focus(scene, values)
    matte = scene.matte.alpha if scene.model_alpha is not None else None
    nearness = scene.nearness
    if matte is not None and values.get(P.FOCUS_X) is None and values.get(P.FOCUS_DEPTH) is None:
        pushed = np.minimum(nearness, np.float32(max(0.0, focus - PORTRAIT_DEFOCUS)))
        nearness = matte * nearness + (1 - matte) * pushed
    return bokeh(scene.photo, nearness, focus, values.get(P.APERTURE), matte)


def _adjusted(scene: Scene, values: Values) -> np.ndarray:
    if values.get(P.BY) == "depth":
        near, far = values.get(P.RAMP_NEAR), values.get(P.RAMP_FAR)
        if near <= far:
            raise ParameterError(f"ramp_near ({near:g}) must be above ramp_far ({far:g}): nearness runs from 0 "
                                 "(far) to 1 (near)")
        weight = tone.depth_ramp(scene.nearness, near, far)
    else:
        weight = scene.matte.alpha
    fg, bg = (tone.Tone(*(values.get(p) for p in P.TONES[i:i + 3])) for i in (0, 3))
    return tone.adjust(scene.photo, weight, fg, bg)


def _crop(scene: Scene, values: Values) -> tuple[np.ndarray, list[float]]:
    target = (values.get(P.CROP_WIDTH), values.get(P.CROP_HEIGHT))
    if values.get(P.ASPECT) is not None:
        aspect = tuple(int(v) for v in values.get(P.ASPECT).split(":"))
    elif None not in target:
        aspect = target
    else:
        raise ParameterError("give aspect=W:H, or width and height together")
    try:
        largest_box(scene.size, aspect)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ParameterError(f"{exc}: ask for an aspect nearer the photo's {scene.size[0]}:{scene.size[1]}") from None
    x, y, w, h = crop_box(scene.matte.alpha, scene.nearness, aspect)  # type: ignore[arg-type]
    pixels = np.ascontiguousarray(scene.photo[y:y + h, x:x + w])
    if None not in target:
        shrink = target[0] < w
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    sx, sy = scene.photo_size[0] / scene.size[0], scene.photo_size[1] / scene.size[1]
    box = [round(x * sx), round(y * sy), round(w * sx), round(h * sy)]
    return pixels, [float(v) for v in box]


def _styled(scene: Scene, values: Values) -> np.ndarray:
    keep = scene.matte.alpha if values.get(P.KEEP) == "person" else None
    return styling.mix(scene.photo, scene.pixels, values.get(P.STRENGTH), keep)


def _upscaled(scene: Scene, values: Values) -> np.ndarray:
    """The network's 4x result, or half of it for scale=2."""
    scale, made = values.get(P.SCALE), scene.pixels
    width, height = scene.photo_size
    factor = made.shape[1] / width
    if made.shape[:2] != (round(height * factor), round(width * factor)) or factor < scale:
        raise ImageError(f"the upscaler made {made.shape[1]}x{made.shape[0]} from a {width}x{height} photo, "
                         f"not a multiple of {scale}")
    if factor == scale:
        return made
    return cv2.resize(made, (width * scale, height * scale), interpolation=cv2.INTER_AREA)


def _erased(scene: Scene, values: Values, part: bytes, max_pixels: int) -> tuple[np.ndarray, float]:
    """The photo with the region filled, and what the region is: -1 for the uploaded ``mask``, else the
    selection's source (an index into SELECT_SOURCES) at the tap."""
    if part:
        try:
            mask = np.asarray(Photo(part, max_pixels).decode(), dtype=np.uint8)
        except ImageError as exc:
            raise ParameterError(f"the mask part: {exc}") from None
        return eraser.fill(scene.photo, eraser.read_mask(mask, scene.size)), -1.0
    if values.get(P.POINT_X) is None:
        raise ParameterError("give the region to erase as a multipart part named mask (white = erase), or tap it "
                             "with x and y")
    selected, source = _selected(scene, values)
    if not (selected >= 128).any():
        raise ParameterError("the tap selected nothing to erase (a negative point took it all); tap on what to "
                             "remove, or send it as a mask part")
    if (selected >= 128).all():
        raise ParameterError("the tap selected the whole photo: there is nothing left to fill it from; tap on "
                             "something smaller, add negative points, or send a mask part")
    return eraser.fill(scene.photo, selected >= 128), source


def _layers_json(scene: Scene, values: Values, compress_level: int) -> bytes:
    makers = {
        "depth": lambda: _png(_depth_pixels(scene), compress_level),
        "matte": lambda: _png(matte_to_uint8(scene.matte.alpha), compress_level),
        "foreground": lambda: _png(_cutout(scene), compress_level),
        "background": lambda: _png(_background_layer(scene), compress_level),
        **{name: (lambda name=name: _png(scene.mask_layer(name), compress_level))
           for name in ("person", *P.FACE_LAYER_NAMES)},
    }
    include = list(dict.fromkeys(values.get(P.INCLUDE).split(",")))
    body: dict[str, Any] = {"width": scene.size[0], "height": scene.size[1],
                            "photo_width": scene.photo_size[0], "photo_height": scene.photo_size[1]}
    if "depth" in include:
        body.update(depth_near=scene.depth.near, depth_far=scene.depth.far)
    if "faces" in include:  # in pixels of the upright photo, like the tap of /v1/select
        sx, sy = scene.photo_size[0] / scene.size[0], scene.photo_size[1] / scene.size[1]
        body["faces"] = faces_json([scaled(face, sx, sy) for face in scene.found_faces])
    body["layers"] = {name: base64.b64encode(makers[name]()).decode("ascii") for name in include if name in makers}
    return json.dumps(body).encode()


def _points(text: str) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in (pair.split(",") for pair in text.split(";") if pair)]


def _taps(scene: Scene, values: Values) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The tap and the extra and negative points, checked against the upright photo, in pixels of the output."""
    x, y = values.get(P.POINT_X), values.get(P.POINT_Y)
    if x is None or y is None:
        raise ParameterError("give the tap as x and y (pixels of the upright photo)")
    positive, negative = [(x, y), *_points(values.get(P.POINTS))], _points(values.get(P.NEGATIVE))
    if len(positive) + len(negative) > P.MAX_POINTS:
        raise ParameterError(f"{len(positive) + len(negative)} points given; at most {P.MAX_POINTS} in all")
    width, height = scene.photo_size
    for px, py in positive + negative:
        if px >= width or py >= height:
            raise ParameterError(f"the point ({px}, {py}) lies outside the upright photo of {width}x{height}: give "
                                 f"0 <= x <= {width - 1} and 0 <= y <= {height - 1}")

    def scaled(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(min(int(px * scene.size[0] / width), scene.size[0] - 1),
                 min(int(py * scene.size[1] / height), scene.size[1] - 1)) for px, py in points]

    return scaled(positive), scaled(negative)


def _selected(scene: Scene, values: Values) -> tuple[np.ndarray, float]:
    """The mask under the tap and what it is (an index into SELECT_SOURCES)."""
    positive, negative = _taps(scene, values)
    parts = {name: scene.face_parts[name] for name in FINEST_FIRST}
    chosen = selection.select(scene.photo, positive, negative, scene.matte.alpha, bool(scene.found_faces), parts)
    return chosen.mask, float(P.SELECT_SOURCES.index(chosen.source))


def compose(wanted: set[str], scene: Scene, values: Values, parts: dict[str, bytes], compress_level: int,
            max_pixels: int) -> dict[str, bytes | list[float]]:
    """Every output tensor in ``wanted`` -> its encoded bytes (results) or its values (header outputs)."""
    out: dict[str, bytes | list[float]] = {}
    scene.colours = bool(wanted & SHOWS_SUBJECT)
    makers = {
        P.DEPTH_IMAGE.tensor: lambda: _encode(_depth_pixels(scene), values, compress_level),
        P.MASK_IMAGE.tensor: lambda: _encode(scene.mask_layer(values.get(P.LAYER)), values, compress_level),
        P.CUTOUT_IMAGE.tensor: lambda: _encode(_cutout(scene), values, compress_level),
        P.BACKGROUND_IMAGE.tensor: lambda: _encode(
            _new_background(scene, values, parts.get(P.BACKGROUND_PART.tensor, b""), max_pixels), values,
            compress_level),
        P.BOKEH_IMAGE.tensor: lambda: _encode(_bokeh(scene, values), values, compress_level),
        P.ADJUST_IMAGE.tensor: lambda: _encode(_adjusted(scene, values), values, compress_level),
        P.STYLE_IMAGE.tensor: lambda: _encode(_styled(scene, values), values, compress_level),
        P.UPSCALE_IMAGE.tensor: lambda: _encode(_upscaled(scene, values), values, compress_level),
        P.LAYERS_JSON.tensor: lambda: _layers_json(scene, values, compress_level),
    }
    for tensor, make in makers.items():
        if tensor in wanted:
            out[tensor] = make()
    if P.ERASE_IMAGE.tensor in wanted:
        erased, source = _erased(scene, values, parts.get(P.ERASE_MASK.tensor, b""), max_pixels)
        out[P.ERASE_IMAGE.tensor] = _encode(erased, values, compress_level)
        out[P.SELECTED.tensor] = [source]
    elif P.SELECT_IMAGE.tensor in wanted or P.SELECTED.tensor in wanted:
        mask, source = _selected(scene, values)
        out[P.SELECT_IMAGE.tensor] = _encode(mask, values, compress_level)
        out[P.SELECTED.tensor] = [source]
    if P.CROP_IMAGE.tensor in wanted or P.CROP_BOX.tensor in wanted:
        pixels, box = _crop(scene, values)
        out[P.CROP_IMAGE.tensor] = _encode(pixels, values, compress_level)
        out[P.CROP_BOX.tensor] = box
    return out | _header_values(wanted, scene)


def _header_values(wanted: set[str], scene: Scene) -> dict[str, list[float]]:
    """The header outputs in ``wanted`` that describe the scene rather than one result."""
    out: dict[str, list[float]] = {}
    if P.SUBJECT.tensor in wanted:
        out[P.SUBJECT.tensor] = [float(scene.subject_kind)]
    if P.FACE_COUNT.tensor in wanted:
        out[P.FACE_COUNT.tensor] = [float(len(scene.faces)) if scene.faces is not None else -1.0]  # -1: not looked
    if P.DEPTH_RANGE.tensor in wanted:
        out[P.DEPTH_RANGE.tensor] = [scene.depth.near, scene.depth.far]
    if P.MATTE_REFINED.tensor in wanted:
        out[P.MATTE_REFINED.tensor] = [float(scene.matte.refined)]
    if P.FOREGROUND_BOX.tensor in wanted:
        shown = (matte_to_uint8(scene.matte.alpha) >= FOREGROUND_ALPHA).astype(np.uint8)
        out[P.FOREGROUND_BOX.tensor] = [float(v) for v in cv2.boundingRect(cv2.findNonZero(shown))] \
            if shown.any() else [0.0] * 4
    return out
