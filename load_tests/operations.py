"""The operations a load generator or report can ask for: one per ensemble of the product's image operations.

The load mix and the throughput sections use ``LOAD_OPERATIONS``, the results every edit is built on; the edits
themselves are timed per call by the bench's edit-latency section.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.product import PRODUCT
from contract.schema import Ensemble
from load_tests.png_check import PngKind


@dataclass(frozen=True)
class Operation:
    """One ensemble: its HTTP path, its Triton name, and the ONNX model doing the work (of a variant that chooses its
    matte by the faces found, ``auto``: the first, chosen when a face is found; the face networks run too)."""

    name: str
    http_path: str
    ensemble: str
    png_output: str
    png_kind: PngKind
    model: str
    triton_outputs: tuple[str, ...]
    by_faces: bool = False  # the ensemble chooses its matte by the faces found (``model=auto``)


def _operation(ensemble: Ensemble) -> Operation:
    op = ensemble.operation
    query = f"?{op.variant_parameter}={ensemble.variant}" if ensemble.variant else ""
    return Operation(
        name=ensemble.label, http_path=PRODUCT.path(op) + query, ensemble=ensemble.name,
        png_output=op.output.tensor, png_kind=PngKind.of(op.output),
        # The operation's own model (depth's, beside the matte it is fused with), else the variant's matte.
        model=ensemble.models[0], triton_outputs=op.triton_outputs,
        by_faces=bool(op.variant(ensemble.variant) and op.variant(ensemble.variant).by_faces),
    )


LOAD_OPERATIONS = ("depth", "mask", "cutout")
# The ensembles a request with default parameters reaches (not a mask's twin with the faces step, for face layers).
OPERATIONS = {e.label: _operation(e) for e in PRODUCT.ensembles()
              if e.operation.name in LOAD_OPERATIONS and not (e.with_faces and e.operation.has_plain_twin(e.variant))}


def check_operations(names: list[str]) -> list[Operation]:
    """Operations by name, or a ValueError that lists the known names."""
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown or not names:
        raise ValueError(f"unknown operation(s) {unknown or names}; choose from {', '.join(OPERATIONS)}")
    return [OPERATIONS[name] for name in names]
