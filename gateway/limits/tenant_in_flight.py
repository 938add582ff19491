"""Per-tenant bound on image requests in flight in this process.

The process-wide bound is ``process_in_flight``; this one keeps a
single tenant from taking all of it. Counters live in the process (each replica
bounds its own share), which needs no shared store and no clean-up after a crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import TooManyRequests

RETRY_AFTER_S = 1


class TenantInFlightLimit:
    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._busy: Counter[int] = Counter()

    @contextmanager
    def hold(self, tenant_id: int) -> Iterator[None]:
        """A slot for one request of ``tenant_id``, or ``TooManyRequests`` at once when all are taken."""
        if self._busy[tenant_id] >= self.per_tenant:
            raise TooManyRequests(
                f"this account already has {self.per_tenant} requests in flight on this server; wait for one to "
                f"finish or retry after {RETRY_AFTER_S} s",
                code="too_many_concurrent_requests", headers={"Retry-After": str(RETRY_AFTER_S)})
        self._busy[tenant_id] += 1
        try:
            yield
        finally:
            self._busy[tenant_id] -= 1
            if not self._busy[tenant_id]:
                del self._busy[tenant_id]
