"""Per-tenant bound on failed requests that reached Triton: they are not billed, yet each cost Triton
its work (a photo whose last chunk is corrupt, a client that leaves just before the answer, a request
that runs past its budget). Without a bound, "failures are free" is free compute.

A tenant may have ``per_minute`` of them, refilled evenly; past that its image requests get 429
``too_many_failed_requests`` before their body is read, until the allowance refills. Counted per
process, like the other in-flight limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import TooManyRequests
from gateway.limits.rate import InProcessRateLimiter


class UnbilledFailureLimit:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._allowance = InProcessRateLimiter(clock)
        self._blocked_until: dict[int, float] = {}

    def check(self, tenant_id: int) -> None:
        """429 while ``tenant_id`` has used up its allowance of unbilled failures."""
        until = self._blocked_until.get(tenant_id)
        if until is None:
            return
        left_s = until - self._clock()
        if left_s <= 0:
            del self._blocked_until[tenant_id]
            return
        retry_after = max(1, round(left_s))
        raise TooManyRequests(
            f"this account had more than {self.per_minute} failed requests in the last minute that the models "
            f"had worked on (not billed: corrupt photos, requests over the time budget, clients that left "
            f"before the answer); fix the cause, then retry after {retry_after} s",
            code="too_many_failed_requests", headers={"Retry-After": str(retry_after)})

    def record(self, tenant_id: int) -> None:
        """One more unbilled failure of ``tenant_id``."""
        decision = self._allowance.take(str(tenant_id), self.per_minute / 60, self.per_minute)
        if not decision.allowed:
            self._blocked_until[tenant_id] = self._clock() + decision.retry_after_s
