"""The cache of verified API keys: TTL, key expiry, size bound, and off at TTL 0."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.db import utcnow
from gateway.keys import Principal
from gateway.principal_cache import PrincipalCache


def principal(name: str = "acme", expires_in: timedelta | None = None) -> Principal:
    expires_at = None if expires_in is None else utcnow() + expires_in
    return Principal(1, name, "k" + name, frozenset({"mask"}), 5.0, 10, False, expires_at)


def test_a_verification_is_trusted_for_the_ttl_only() -> None:
    now = [100.0]
    cache = PrincipalCache(ttl_s=5, clock=lambda: now[0])
    cache.put("h", principal())
    now[0] = 104.99
    assert cache.get("h") == principal()
    now[0] = 105.0
    assert cache.get("h") is None
    assert len(cache) == 0  # dropped, not kept around


def test_never_past_the_keys_own_expiry() -> None:
    cache = PrincipalCache(ttl_s=60)
    cache.put("soon", principal(expires_in=timedelta(seconds=-1)))
    cache.put("later", principal(expires_in=timedelta(days=1)))
    assert cache.get("soon") is None
    assert cache.get("later") is not None


def test_bounded_size_drops_the_oldest() -> None:
    cache = PrincipalCache(ttl_s=60, max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(name, principal(name))
    assert len(cache) == 2
    assert cache.get("a") is None and cache.get("c").tenant_name == "c"


def test_ttl_zero_keeps_nothing() -> None:
    cache = PrincipalCache(ttl_s=0)
    cache.put("h", principal())
    assert cache.get("h") is None and len(cache) == 0


@pytest.mark.parametrize(("ttl_s", "max_entries"), [(-1, 10), (5, 0)])
def test_bad_arguments_are_refused(ttl_s: float, max_entries: int) -> None:
    with pytest.raises(ValueError, match="ttl_s >= 0"):
        PrincipalCache(ttl_s, max_entries)
