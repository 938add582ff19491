"""API keys: generation, hashing, lookup and verification.

A key looks like ``isk_<key_id>_<secret>``: ``key_id`` (12 hex characters) is
public and indexes the row; ``secret`` is ``secrets.token_urlsafe(32)`` (256
random bits). Only ``sha256(key)`` is stored. A plain fast hash is enough here
because the key is machine-generated with 256 bits of entropy: a slow password
hash (bcrypt, scrypt) only protects low-entropy secrets against guessing, and
guessing a 256-bit value is infeasible however fast the hash is; a fast hash
also keeps per-request verification cheap. Hashes are compared with
``hmac.compare_digest``. The key itself is shown once at creation and never
logged, counted or echoed in an error.

Keys not in this format (an operator's ``GATEWAY_BOOTSTRAP_API_KEY``) get the
key id ``b`` + the first 11 hex characters of their hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import OPERATION_NAMES, ApiKey, CreditGrant, Tenant, as_utc, utcnow

KEY_PREFIX = "isk"
MIN_BOOTSTRAP_KEY_LENGTH = 32
BOOTSTRAP_TENANT = "admin"


class KeyError_(Exception):
    """A key management request that cannot be done (unknown tenant, unknown key id)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified key and its tenant's limits."""

    tenant_id: int
    tenant_name: str
    key_id: str
    operations: frozenset[str]
    rate_per_s: float
    burst: int
    is_admin: bool
    expires_at: datetime | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str:
    """The public id a presented key is looked up by (never raises)."""
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == KEY_PREFIX and len(parts[1]) == 12 and parts[2]:
        return parts[1]
    return "b" + hash_key(key)[:11]


def generate_key() -> tuple[str, str]:
    """A new ``(key_id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def create_key(sessions: sessionmaker, tenant_name: str, label: str = "",
               expires_at: datetime | None = None) -> tuple[str, str]:
    """Create a key for ``tenant_name``; returns ``(key_id, key)``; the key is not recoverable later."""
    with sessions.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        if tenant is None:
            raise KeyError_(f"no tenant named {tenant_name!r}; create it first")
        key_id, key = generate_key()
        session.add(ApiKey(key_id=key_id, tenant_id=tenant.id, key_hash=hash_key(key), label=label,
                           expires_at=expires_at))
    return key_id, key


def list_keys(sessions: sessionmaker, tenant_name: str | None = None) -> list[dict[str, object]]:
    with sessions() as session:
        query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.created_at)
        if tenant_name is not None:
            query = query.where(Tenant.name == tenant_name)
        return [
            {"key_id": key.key_id, "tenant": name, "label": key.label, "created_at": key.created_at,
             "expires_at": key.expires_at, "revoked_at": key.revoked_at}
            for key, name in session.execute(query)
        ]


def revoke_key(sessions: sessionmaker, key_id: str) -> None:
    with sessions.begin() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise KeyError_(f"no key with id {key_id!r}; list keys to see the ids")
        if key.revoked_at is None:
            key.revoked_at = utcnow()


def authenticate(session: Session, presented: str) -> Principal | None:
    """The principal of a valid key; ``None`` for unknown, wrong, revoked or expired keys."""
    row = session.execute(
        select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.key_id == key_id_of(presented))
    ).first()
    # Compare against a dummy hash when the id is unknown, so timing does not tell ids apart.
    stored = row[0].key_hash if row is not None else "0" * 64
    if not hmac.compare_digest(stored, hash_key(presented)) or row is None:
        return None
    key, tenant = row
    now = utcnow()
    if key.revoked_at is not None or (key.expires_at is not None and as_utc(key.expires_at) <= now):
        return None
    return Principal(tenant.id, tenant.name, key.key_id, tenant.allowed_operations(), tenant.rate_per_s,
                     tenant.burst, tenant.is_admin, key.expires_at)


def bootstrap(sessions: sessionmaker, key: str, credits: int, rate_per_s: float, burst: int) -> str:
    """Make sure an admin tenant exists and accepts ``key`` (idempotent, safe with several replicas)."""
    if len(key) < MIN_BOOTSTRAP_KEY_LENGTH:
        raise ValueError(f"GATEWAY_BOOTSTRAP_API_KEY must be at least {MIN_BOOTSTRAP_KEY_LENGTH} characters; "
                         "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    key_id = key_id_of(key)
    for _ in range(3):  # another replica may insert the same rows concurrently
        try:
            with sessions.begin() as session:
                if session.get(ApiKey, key_id) is not None:
                    return key_id
                tenant = session.scalar(select(Tenant).where(Tenant.name == BOOTSTRAP_TENANT))
                if tenant is None:
                    tenant = Tenant(name=BOOTSTRAP_TENANT, balance=credits, rate_per_s=rate_per_s, burst=burst,
                                    operations=",".join(OPERATION_NAMES), is_admin=True)
                    session.add(tenant)
                    session.flush()
                    session.add(CreditGrant(tenant_id=tenant.id, credits=credits, reason="bootstrap"))
                session.add(ApiKey(key_id=key_id, tenant_id=tenant.id, key_hash=hash_key(key), label="bootstrap"))
            return key_id
        except IntegrityError:
            continue
    raise RuntimeError("could not create the bootstrap key; check the database")
