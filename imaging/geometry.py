"""Output sizes."""

from __future__ import annotations


def output_size(full_size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) of the outputs: the photo's size, shrunk to fit ``max_side`` if positive."""
    width, height = full_size
    if max_side < 0:
        raise ValueError(f"max_side must be 0 (original size) or positive, got {max_side}")
    longest = max(width, height)
    if max_side == 0 or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))
