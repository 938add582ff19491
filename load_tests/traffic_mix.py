"""The traffic of the locust scenarios, and the check of each response (no locust import here).

Kept out of ``locustfile.py`` because importing locust monkey-patches the
standard library with gevent, which tests and the benchmark must not suffer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Protocol, TypeVar

from load_tests.operations import Operation
from load_tests.png_check import BadResponse, check_png

K = TypeVar("K")
# Share of traffic per operation: masks and depth dominate; cutouts cost more.
OPERATION_WEIGHTS = {"depth": 3, "mask_fast": 4, "mask_quality": 1, "cutout_fast": 2, "cutout_quality": 1}
# Phone apps mostly send 1 MP previews; originals (12 MP) are the rare, heavy tail.
PHOTO_WEIGHTS = {"0.3MP": 3, "1MP": 4, "3MP": 2, "12MP": 1}
# max_side -> weight: most callers want the photo's size, some a 1024-px preview.
MAX_SIDE_WEIGHTS = {0: 3, 1024: 1}


class HttpResult(Protocol):
    status_code: int
    headers: Mapping[str, str]
    content: bytes
    text: str


def operation_deck(rng: random.Random) -> list[str]:
    """One user's shuffled cycle of operations: every endpoint in each run of ``sum(weights)`` requests."""
    deck = [name for name, weight in OPERATION_WEIGHTS.items() for _ in range(weight)]
    rng.shuffle(deck)
    return deck


def weighted_choice(weights: Mapping[K, int], rng: random.Random) -> K:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def request_path(operation: Operation, max_side: int) -> str:
    if not max_side:
        return operation.http_path
    return operation.http_path + ("&" if "?" in operation.http_path else "?") + f"max_side={max_side}"


def check_response(operation: Operation, response: HttpResult, size: tuple[int, int]) -> None:
    """Raise BadResponse unless ``response`` is the operation's PNG at ``size`` with its billing headers."""
    if response.status_code != 200:
        raise BadResponse(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.headers.get("Content-Type") != "image/png":
        raise BadResponse(f"Content-Type {response.headers.get('Content-Type')!r}, expected image/png")
    check_png(response.content, size, operation.png_kind)
    charged = response.headers.get("X-Credits-Charged", "")
    if not charged.isdigit() or int(charged) < 1:
        raise BadResponse(f"X-Credits-Charged {charged!r}: every successful call costs at least 1 credit")
    if operation.name == "depth":
        try:
            near, far = float(response.headers["X-Depth-Near"]), float(response.headers["X-Depth-Far"])
        except (KeyError, ValueError):
            raise BadResponse("depth response without numeric X-Depth-Near / X-Depth-Far") from None
        if not near <= far:
            raise BadResponse(f"X-Depth-Near {near} > X-Depth-Far {far}")
