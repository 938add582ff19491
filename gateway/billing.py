"""Billing of one image request, as one unit: ``async with billing.open(...) as bill``.

The protocol (``gateway.ledger`` holds the statements, this module the order):

1. On entry, with an ``Idempotency-Key``: look up the key's first charge within 24 hours. A retry of
   the same request is answered again but not billed again; the key reused for another request is 409.
   A replay re-runs inference, so it needs a balance that would pay for it (402 otherwise) and is
   refused after ``max_replays_per_key`` answers (429).
2. Otherwise reserve the cost: one conditional debit of balance and monthly quota, and a reservation
   row that expires after the request budget plus a margin (402 when it does not fit).
3. The body of the ``with`` runs inference. It sets ``bill.charge`` once the result exists.
4. On exit with a charge: commit (the reservation row becomes a ledger row, with the key's record, in
   one transaction). When that cannot be written (database error, reservation swept, the key claimed
   concurrently) the reservation is released and the answer says what was billed: nothing, or the
   concurrent first charge.
5. On exit without a charge, or with any exception (bad photo found by Triton, Triton error or
   timeout, client gone): release, shielded from cancellation. Release is idempotent.

``bill.headers`` then holds ``X-Credits-Charged``, ``X-Credits-Remaining`` and, for a replay,
``Idempotent-Replayed`` and the first request's ``X-Charge-Id``. A gateway that dies between 2 and 4 leaves a
reservation row behind; ``ledger.sweep_expired`` returns it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from gateway import ledger
from gateway.errors import Conflict, PaymentRequired, TooManyRequests
from gateway.keys import Principal
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

# A reservation outlives its request by this much before the sweeper may return it.
RESERVATION_MARGIN = timedelta(seconds=60)
MAX_TRACKED_REPLAYS = 10_000


def fingerprint(operation: str, variant: str, parameters: list[object], data: bytes, *parts: bytes) -> str:
    """sha256 of what makes two requests the same: operation, variant, parameter values, photo and any
    further image parts (each length-prefixed, so where one ends and the next begins counts too)."""
    digest = hashlib.sha256("|".join([operation, variant, *map(str, parameters), ""]).encode())
    digest.update(data)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass
class Bill:
    """One request's bill while its inference runs; ``charge`` is set by the caller on success."""

    request_id: str
    charge: ledger.Charge | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Billing:
    def __init__(self, sessions: sessionmaker, prices: ledger.PriceTable, metrics: GatewayMetrics,
                 request_budget_s: float, max_replays_per_key: int) -> None:
        self.sessions = sessions
        self.prices = prices
        self.metrics = metrics
        self.hold = timedelta(seconds=request_budget_s) + RESERVATION_MARGIN
        self.max_replays = max_replays_per_key
        self._replays: OrderedDict[tuple[int, str], int] = OrderedDict()  # (tenant, key) -> answers again

    @asynccontextmanager
    async def open(self, principal: Principal, operation: str, megapixels: float, request_id: str,
                   claim: ledger.IdempotencyClaim | None) -> AsyncIterator[Bill]:
        first = await self._first_charge(principal.tenant_id, claim)
        reservation = None
        cost = self.prices.cost(operation, megapixels)
        if first is None:
            reservation = await self._reserve(principal, cost, request_id)
        else:
            assert claim is not None
            await self._admit_replay(principal.tenant_id, claim.key, cost)
        bill = Bill(request_id)
        try:
            yield bill
        except BaseException:
            if reservation is not None:
                await self._release(reservation, request_id)
            raise
        if bill.charge is None:
            if reservation is not None:
                await self._release(reservation, request_id)
            return
        bill.headers = await self._settle(principal, reservation, bill.charge, claim, first)

    async def _admit_replay(self, tenant_id: int, key: str, cost: int) -> None:
        """A replay re-runs inference without billing: only for a tenant that could pay for it, and at
        most ``max_replays`` times per key in this process."""
        seen = self._replays.get((tenant_id, key), 0)
        if seen >= self.max_replays:
            raise TooManyRequests(f"this Idempotency-Key was answered again {seen} times already; use the answer "
                                  "you have, or send a new request with a new key", code="too_many_replays")
        balance = await run_in_threadpool(ledger.balance, self.sessions, tenant_id)
        if balance < cost:
            raise PaymentRequired(f"answering this retry again needs a balance of {cost} credits (it is not billed "
                                  f"again), and the balance is {balance}; top up the account")
        self._replays[(tenant_id, key)] = seen + 1
        self._replays.move_to_end((tenant_id, key))
        while len(self._replays) > MAX_TRACKED_REPLAYS:
            self._replays.popitem(last=False)

    async def _first_charge(self, tenant_id: int, claim: ledger.IdempotencyClaim | None) -> ledger.FirstCharge | None:
        if claim is None:
            return None
        try:
            return await run_in_threadpool(ledger.first_charge, self.sessions, tenant_id, claim)
        except ledger.IdempotencyConflict:
            raise Conflict("this Idempotency-Key was already used for a different request in the last 24 hours; "
                           "use a new key for each new request", code="idempotency_key_reused") from None

    async def _reserve(self, principal: Principal, cost: int, request_id: str) -> ledger.Reservation:
        try:
            return await run_in_threadpool(ledger.reserve, self.sessions, principal.tenant_id, cost, request_id,
                                           self.hold)
        except ledger.InsufficientCredits as short:
            if short.reason == "balance":
                raise PaymentRequired(f"this request costs {short.needed} credits and the balance is {short.balance}; "
                                      "top up the account or send a smaller photo") from None
            raise PaymentRequired(f"this request costs {short.needed} credits, over what is left of this month's "
                                  "quota; wait for next month or ask for a larger quota",
                                  code="monthly_quota_exceeded") from None

    async def _settle(self, principal: Principal, reservation: ledger.Reservation | None, charge: ledger.Charge,
                      claim: ledger.IdempotencyClaim | None, first: ledger.FirstCharge | None) -> dict[str, str]:
        if reservation is not None:
            try:
                await run_in_threadpool(ledger.commit, self.sessions, reservation, charge, claim)
                self.metrics.credits_charged.labels(charge.operation).inc(reservation.credits)
                return {"X-Credits-Charged": str(reservation.credits),
                        "X-Credits-Remaining": str(reservation.remaining)}
            except (SQLAlchemyError, ledger.ReservationGone) as error:
                if isinstance(error, IntegrityError) and claim is not None:
                    first = await self._first_charge(reservation.tenant_id, claim)
                if first is None:
                    self.metrics.ledger_write_errors.inc()
                    log.exception("ledger write failed for request %s; its credits are released", charge.request_id)
            await self._release(reservation, charge.request_id)
        headers = {"X-Credits-Charged": "0"} if first is None else {  # a retry: the first charge, not billed again
            "X-Charge-Id": first.request_id, "X-Credits-Charged": str(first.credits), "Idempotent-Replayed": "true"}
        headers["X-Credits-Remaining"] = str(await run_in_threadpool(ledger.balance, self.sessions,
                                                                     principal.tenant_id))
        return headers

    async def _release(self, reservation: ledger.Reservation, request_id: str) -> None:
        # Shielded: runs even when the client went away and the request task is being cancelled.
        with anyio.CancelScope(shield=True):
            try:
                await run_in_threadpool(ledger.release, self.sessions, reservation.id)
            except Exception:
                log.exception("could not release %d credits of tenant %d for request %s",
                              reservation.credits, reservation.tenant_id, request_id)
