"""Process-wide budget of upload bytes in flight: what the in-flight cap alone cannot bound.

64 requests in flight x a 30 MiB limit is 1.9 GiB of bodies, each held two or three times at its
peak (the received chunks, the joined body, the gRPC message): more than a 2 GiB pod. A request
takes its declared ``Content-Length`` (or, for a chunked body, the whole body limit) from the budget
before its body is read and gives it back when it is answered; past the budget it gets 503 with
``Retry-After`` at once, before a byte of its body is read, and is not billed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import ServiceUnavailable

RETRY_AFTER_S = 1


class UploadByteBudget:
    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.used = 0

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """``size`` bytes of the budget for one request, or 503 at once when they are not free."""
        if self.used + size > self.total_bytes:
            raise ServiceUnavailable(
                f"this gateway is receiving {self.used >> 20} MiB of uploads, its limit is "
                f"{self.total_bytes >> 20} MiB; retry after {RETRY_AFTER_S} s (clients should back off with jitter)",
                code="upload_budget_exhausted", headers={"Retry-After": str(RETRY_AFTER_S)})
        self.used += size
        try:
            yield
        finally:
            self.used -= size


def declared_size(content_length: str | None, max_body_bytes: int) -> int:
    """What a request takes from the budget: its declared length (never more than the body limit; a body
    longer than it declares is cut off by the server), or the limit itself for a chunked body."""
    if content_length is not None and content_length.isdigit():
        return min(int(content_length), max_body_bytes)
    return max_body_bytes
