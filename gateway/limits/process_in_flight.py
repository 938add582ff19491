"""Process-wide bound on image requests in flight: beyond it, an immediate 503, never a queue.

Checked by ``middleware.ImageRouteGuard`` before authentication or reading the body, so a flood
costs this process almost nothing.
"""

from __future__ import annotations

import json

from starlette.types import Send

RETRY_AFTER_S = 1


class ProcessInFlightLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_enter(self) -> bool:
        """Take a place, or False when ``limit`` requests are already being served."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    async def refuse(self, send: Send) -> None:
        body = json.dumps({"error": {
            "code": "overloaded",
            "message": f"this gateway is serving its limit of {self.limit} image requests; retry after "
                       f"{RETRY_AFTER_S} s (clients should back off with jitter)",
        }}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()), (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": body})
