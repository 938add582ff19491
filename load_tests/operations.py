"""The five operations a client can ask for, named once for every load generator and report."""

from __future__ import annotations

from dataclasses import dataclass

from load_tests.png_check import CUTOUT_PNG, DEPTH_PNG, MASK_PNG, PngKind


@dataclass(frozen=True)
class Operation:
    """One product: its HTTP path, its Triton ensemble, and the ONNX model doing the work."""

    name: str
    http_path: str
    ensemble: str
    png_output: str
    png_kind: PngKind
    model: str

    @property
    def triton_outputs(self) -> list[str]:
        return [self.png_output, "DEPTH_RANGE"] if self.png_output == "DEPTH_PNG" else [self.png_output]


OPERATIONS = {op.name: op for op in (
    Operation("depth", "/v1/depth", "photo_depth", "DEPTH_PNG", DEPTH_PNG, "depth"),
    Operation("mask_fast", "/v1/mask?model=fast", "photo_mask_fast", "MASK_PNG", MASK_PNG, "segmentation_fast"),
    Operation("mask_quality", "/v1/mask?model=quality", "photo_mask_quality", "MASK_PNG", MASK_PNG,
              "segmentation_quality"),
    Operation("cutout_fast", "/v1/cutout?model=fast", "photo_cutout_fast", "CUTOUT_PNG", CUTOUT_PNG,
              "segmentation_fast"),
    Operation("cutout_quality", "/v1/cutout?model=quality", "photo_cutout_quality", "CUTOUT_PNG", CUTOUT_PNG,
              "segmentation_quality"),
)}


def check_operations(names: list[str]) -> list[Operation]:
    """Operations by name, or a ValueError that lists the known names."""
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown or not names:
        raise ValueError(f"unknown operation(s) {unknown or names}; choose from {', '.join(OPERATIONS)}")
    return [OPERATIONS[name] for name in names]
