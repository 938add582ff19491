"""``style``: the photo restyled at its working size (``imaging.style``), by the 26-style network it hosts, or,
for a ``style_image`` part, by the arbitrary-style pair it calls through Triton (``Operation.called_models``:
the predictor reads the style image's centre square, the transform applies its style vector to the photo)."""

from __future__ import annotations

from typing import Any

import numpy as np

from contract.product import STYLE, STYLE_NAMES, STYLE_PART
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.style import style_decode_size, style_square, style_weights, stylize
from triton_models.model_calls import call_model
from triton_models.pixel_step import PixelStep


class TritonPythonModel(PixelStep):
    def setup(self) -> None:
        self.max_side = max(self.parameters.int("max_height"), self.parameters.int("max_width"))
        self.max_pixels = self.parameters.int("max_pixels")
        self.image_input, self.weights_input = self.session.input_names
        # [predictor, transform], each {"name", "inputs", "outputs", "size"} (converters/triton_config.py)
        self.predictor, self.transform_model = self.parameters.json("calls")

    def transform(self, rgb: np.ndarray, values: dict[str, Any]) -> np.ndarray:
        if values[STYLE_PART.name]:
            return self._in_style_of(rgb, values[STYLE_PART.name])
        weights = style_weights(values[STYLE.name], STYLE_NAMES)
        return stylize(rgb, lambda x: self.session.run({self.image_input: x, self.weights_input: weights})[0],
                       self.max_side)

    def _in_style_of(self, rgb: np.ndarray, part: bytes) -> np.ndarray:
        side = self.predictor["size"][0]
        try:
            photo = Photo(part, self.max_pixels)
            style = np.asarray(photo.decode(min_size=style_decode_size(photo.full_size, side)), dtype=np.uint8)
        except ImageError as error:
            raise ImageError(f"the {STYLE_PART.name!r} part: {error}") from None
        (vector,) = call_model(self.predictor["name"], {self.predictor["inputs"][0]: style_square(style, side)},
                               self.predictor["outputs"])
        content, vector_input = self.transform_model["inputs"]
        max_side = max(self.transform_model["size"])
        return stylize(rgb, lambda x: call_model(self.transform_model["name"], {content: x, vector_input: vector},
                                                 self.transform_model["outputs"])[0], max_side, channels_last=True)
