"""Cheap but real checks of a PNG response body: signature, IHDR (size, bit depth, colour) and IEND.

A load generator that fully decoded every 12 MP PNG would spend more CPU than
the server it measures; reading the header and the closing chunk still catches
wrong sizes, wrong kinds of image and truncated bodies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from contract.schema import PNG_RGB, PNG_RGBA, ImageOutput

SIGNATURE = b"\x89PNG\r\n\x1a\n"
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass(frozen=True)
class PngKind:
    """What one endpoint returns: bit depth and PNG colour type."""

    name: str
    bit_depth: int
    colour_type: int

    @classmethod
    def of(cls, output: ImageOutput) -> PngKind:
        colour = {PNG_RGBA: "RGBA", PNG_RGB: "RGB"}.get(output.png_colour_type, "greyscale")
        return cls(f"{output.png_bit_depth}-bit {colour}", output.png_bit_depth, output.png_colour_type)


class BadResponse(ValueError):
    """The body is not the PNG the endpoint promises; the message says how it differs."""


def check_png(body: bytes, size: tuple[int, int], kind: PngKind) -> None:
    """Raise BadResponse unless ``body`` is a complete PNG of ``size`` (width, height) and ``kind``."""
    if not body.startswith(SIGNATURE) or body[12:16] != b"IHDR" or len(body) < 33:
        raise BadResponse(f"not a PNG (first bytes {body[:16]!r}, {len(body)} bytes)")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", body[16:26])
    if (width, height) != size:
        raise BadResponse(f"PNG is {width}x{height}, expected {size[0]}x{size[1]}")
    if (bit_depth, colour_type) != (kind.bit_depth, kind.colour_type):
        raise BadResponse(f"PNG has bit depth {bit_depth} and colour type {colour_type}, expected {kind.name}")
    if not body.endswith(IEND):
        raise BadResponse(f"PNG is truncated: no IEND chunk at the end of {len(body)} bytes")
