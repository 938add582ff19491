"""Durable state of the gateway: tenants, API keys and the usage ledger (SQLAlchemy 2).

SQLite file by default (one gateway process), PostgreSQL when several replicas
share the state. The schema is owned by the Alembic migrations in
``gateway/migrations`` (``gateway.migrate``); these models must match them, which
a test checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from contract.product import PRODUCT

OPERATION_NAMES = PRODUCT.operation_names


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite returns naive datetimes: they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)  # credits left
    monthly_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # credits per calendar month (UTC)
    quota_month: Mapped[str] = mapped_column(String(7), default="")  # "YYYY-MM" that quota_used counts
    quota_used: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_per_s: Mapped[float] = mapped_column(Float, default=5.0)  # token bucket refill rate per key
    burst: Mapped[int] = mapped_column(Integer, default=10)  # token bucket capacity per key
    operations: Mapped[str] = mapped_column(String(512), default=",".join(OPERATION_NAMES))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def allowed_operations(self) -> frozenset[str]:
        return frozenset(op for op in self.operations.split(",") if op)


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public prefix, safe to show
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UsageRecord(Base):
    """Append-only: one row per committed charge; never updated or deleted by the gateway."""

    __tablename__ = "usage_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(16))
    input_megapixels: Mapped[float] = mapped_column(Float)
    output_bytes: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    gateway_latency_ms: Mapped[float] = mapped_column(Float)
    triton_latency_ms: Mapped[float] = mapped_column(Float)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class CreditGrant(Base):
    """Append-only: credits given to a tenant (initial balance, top-up, bootstrap).

    With the ledger this makes the balance auditable:
    ``balance = sum(grants) - sum(ledger) - sum(open reservations)``.
    """

    __tablename__ = "credit_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OpenReservation(Base):
    """Credits taken for a request in flight; deleted by its commit or release.

    A row left by a gateway process that died mid-request is returned to its
    tenant by the sweeper once ``expires_at`` has passed.
    """

    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the request id
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    month: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class IdempotencyRecord(Base):
    """The first billed result of an ``Idempotency-Key``: a retry within the window is not billed again.

    ``fingerprint`` is a sha256 over the operation, its parameters and the body,
    so a key reused for a different request is refused; no image data is kept.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(32))
    credits: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


def make_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for ``url``; ``schema`` sets PostgreSQL's search_path (tests, shared clusters)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=20, max_overflow=20, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit no longer waits for fsync; the file stays consistent, and only an OS crash
            # or power cut (not a process crash) can lose the last commits. PostgreSQL is the production store.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    # hide_parameters: a failed statement's log line never carries its values (key hashes, fingerprints).
    return create_engine(url, connect_args=connect_args, pool_size=20, max_overflow=20, pool_pre_ping=True,
                         hide_parameters=True)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
