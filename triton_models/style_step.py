"""``style``: the 26-style network on the photo at its working size (``imaging.style``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from contract.product import STYLE, STYLE_NAMES
from imaging.style import style_weights, stylize
from triton_models.pixel_step import PixelStep


class TritonPythonModel(PixelStep):
    def setup(self) -> None:
        self.max_side = max(self.parameters.int("max_height"), self.parameters.int("max_width"))
        self.image_input, self.weights_input = self.session.input_names

    def transform(self, rgb: np.ndarray, values: dict[str, Any]) -> np.ndarray:
        weights = style_weights(values[STYLE.name], STYLE_NAMES)
        return stylize(rgb, lambda x: self.session.run({self.image_input: x, self.weights_input: weights})[0],
                       self.max_side)
