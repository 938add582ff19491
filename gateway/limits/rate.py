"""Per-key token buckets: in-process by default, Redis when replicas share limits.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; a request takes one token or is refused with the time until one is
available. While Redis cannot be reached, each replica limits with its own
in-process buckets (N replicas then admit up to N times a key's rate), never
with none.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # bucket capacity
    remaining: int  # whole tokens left after this request
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # seconds until one token is available (0 when allowed)

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter(Protocol):
    blocking: bool  # take() waits on I/O: call it from a worker thread

    def take(self, key_id: str, rate: float, burst: int) -> Decision: ...


def _decision(allowed: bool, tokens: float, rate: float, burst: int) -> Decision:
    return Decision(
        allowed=allowed, limit=burst, remaining=max(0, math.floor(tokens)),
        reset_s=math.ceil((burst - tokens) / rate) if tokens < burst else 0,
        retry_after_s=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


class InProcessRateLimiter:
    """Buckets in this process's memory (one gateway replica)."""

    blocking = False

    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key_id: str, rate: float, burst: int) -> Decision:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key_id] = (tokens, now)
        return _decision(allowed, tokens, rate, burst)


# KEYS[1] bucket; ARGV rate, burst. Uses the server's clock so replicas agree.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis, updated atomically by one Lua script (several gateway replicas).

    When a call to Redis fails, this replica's own buckets decide for ``retry_after_s`` seconds
    before Redis is tried again, so an outage costs one socket timeout per interval, not per request.
    """

    blocking = True

    def __init__(self, url: str, prefix: str = "gateway:ratelimit:", retry_after_s: float = 1.0,
                 clock=time.monotonic) -> None:  # noqa: ANN001
        import redis  # only needed when GATEWAY_REDIS_URL is set

        self._client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._client.register_script(TOKEN_BUCKET_LUA)
        self._prefix = prefix
        self._fallback = InProcessRateLimiter(clock)
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until: float | None = None  # set while Redis is treated as unreachable

    def take(self, key_id: str, rate: float, burst: int) -> Decision:
        if self._down_until is not None and self._clock() < self._down_until:
            return self._fallback.take(key_id, rate, burst)
        try:
            allowed, tokens = self._script(keys=[self._prefix + key_id], args=[rate, burst])
        except Exception as error:  # noqa: BLE001 - any store failure: limit here instead
            if self._down_until is None:
                log.warning("rate-limit store unavailable (%s); limiting with this replica's own buckets "
                            "until it answers again", type(error).__name__)
            self._down_until = self._clock() + self._retry_after_s
            return self._fallback.take(key_id, rate, burst)
        if self._down_until is not None:
            log.warning("rate-limit store reachable again; limits are shared between replicas")
            self._down_until = None
        return _decision(bool(int(allowed)), float(tokens), rate, burst)

    def close(self) -> None:
        self._client.close()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else InProcessRateLimiter()


async def take_token(limiter: RateLimiter, key_id: str, rate: float, burst: int) -> Decision:
    """One token of ``key_id``'s bucket."""
    if not limiter.blocking:  # in-process buckets: a dict and a lock, cheaper than a thread hop
        return limiter.take(key_id, rate, burst)
    return await run_in_threadpool(limiter.take, key_id, rate, burst)
