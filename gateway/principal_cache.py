"""Verified API keys kept for a few seconds, so most requests authenticate without a database read.

Only successful verifications are kept, under the key's sha256 (never the key
itself), for at most ``ttl_s`` and never past the key's own expiry. So a
revoked key, or a tenant's changed limits, take effect on every replica within
``ttl_s`` (``GATEWAY_AUTH_CACHE_TTL_S``; 0 turns the cache off).

Unknown or wrong keys are kept too, as hashes, for ``UNKNOWN_TTL_S``: a client
repeating a bad key costs no database read. A key created meanwhile with the
same value is impossible (keys are generated with 256 random bits), so this
refuses nothing valid. The cache is used from the event loop only, so it needs
no lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.db import as_utc, utcnow
from gateway.keys import Principal

MAX_ENTRIES = 10_000
UNKNOWN_TTL_S = 60.0


class PrincipalCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError(f"need ttl_s >= 0 and max_entries >= 1, got {ttl_s} and {max_entries}")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key hash -> when it was refused

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        stored_at, principal = entry
        expired = principal.expires_at is not None and as_utc(principal.expires_at) <= utcnow()
        if expired or self._clock() - stored_at >= self._ttl_s:
            del self._entries[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._ttl_s == 0:
            return
        self._entries[key_hash] = (self._clock(), principal)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)  # the oldest verification

    def is_unknown(self, key_hash: str) -> bool:
        refused_at = self._unknown.get(key_hash)
        if refused_at is None:
            return False
        if self._clock() - refused_at >= UNKNOWN_TTL_S:
            del self._unknown[key_hash]
            return False
        return True

    def put_unknown(self, key_hash: str) -> None:
        self._unknown[key_hash] = self._clock()
        self._unknown.move_to_end(key_hash)
        while len(self._unknown) > self._max_entries:
            self._unknown.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
