"""``upscale_*``: a super-resolution network over overlapping tiles of the photo (``imaging.tiles``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from imaging.tiles import upscale_tiled
from triton_models.pixel_step import PixelStep


class TritonPythonModel(PixelStep):
    def setup(self) -> None:
        self.tile = self.parameters.int("max_height")
        self.scale = self.parameters.int("scale")
        self.overlap = self.parameters.int("tile_overlap")
        self.batch = self.parameters.int("tile_batch")
        self.input_name = self.session.input_names[0]

    def transform(self, rgb: np.ndarray, values: dict[str, Any]) -> np.ndarray:
        return upscale_tiled(rgb, lambda tiles: self.session.run({self.input_name: tiles})[0], self.scale,
                             self.tile, self.overlap, self.batch)
