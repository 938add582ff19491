"""The person gate: a portrait matte kept only near where a person-only segmenter sees a person.

MODNet (the portrait matte) is trimap-free: with no person prior it also mattes whatever else looks like a
subject (a cat's face filling the frame, a cup beside the person). MediaPipe's selfie segmentation is coarse
but trained on people only. The gate dilates the segmenter's person pixels by ``REACH`` of the matte's height
(so hair, a held object and everything the coarse segmenter misses at the edge stay), softens that region's
border and multiplies the matte by it: pixels far from any person go to zero, the matte's own edges stay.

Both mattes come from the same squashed photo (the decode step resizes to each model's square input), so
they align after resizing. ``THRESHOLD`` and ``REACH`` were chosen on the tuning set (``python -m
evaluation.gate``, evaluation/gate_results.md: of the gates tied for best there, the one that clears least, so
that what a person holds, a helmet or a bag the segmenter does not count, is kept), never on the evaluation
composites.
"""

from __future__ import annotations

import cv2
import numpy as np

THRESHOLD = 0.5  # segmenter confidence counted as a person
REACH = 0.2  # how far (fraction of the matte's height) the matte may reach beyond the segmenter's person


def person_gate(alpha: np.ndarray, person: np.ndarray, threshold: float = THRESHOLD,
                reach: float = REACH) -> np.ndarray:
    """``alpha`` (float (h, w) in [0, 1]) times the soft region within ``reach`` of ``person`` > ``threshold``.

    ``person`` is the segmenter's matte (float (h', w'), any size: resized to ``alpha``'s). A photo in which the
    segmenter sees no person keeps its matte unchanged: the gate is a prior against extra subjects, and a
    person the segmenter missed entirely is better served by MODNet alone than by an empty matte.
    """
    if alpha.ndim != 2 or person.ndim != 2:
        raise ValueError(f"the person gate needs two 2-D mattes, got shapes {alpha.shape} and {person.shape}")
    height, width = alpha.shape
    seen = cv2.resize(np.ascontiguousarray(person, dtype=np.float32), (width, height),
                      interpolation=cv2.INTER_LINEAR) > threshold
    if not seen.any():
        return alpha
    radius = max(1, round(reach * height))
    # Dilation by a disc as a distance transform: linear in the pixels (a 205 px disc kernel took 130 ms at 512 px)
    distance = cv2.distanceTransform(np.logical_not(seen).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    region = (distance <= radius).astype(np.float32)
    soft = cv2.blur(region, (radius + 1, radius + 1), borderType=cv2.BORDER_REPLICATE)
    return (np.asarray(alpha, dtype=np.float32) * soft).astype(np.float32, copy=False)
