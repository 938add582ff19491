"""Gateway settings from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.product import PRODUCT

LIMITS = PRODUCT.limits
DECLARED = "the Triton steps enforce the limits of contract/product.py; raise it there and regenerate the configs"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    metrics_port: int | None = Field(None, ge=1, le=65535,
                                     description="serve /metrics on this port only, off the public API port; "
                                                 "unset serves it on the API port (local use)")
    triton_grpc_url: str = Field("127.0.0.1:8001", description="host:port of Triton's gRPC endpoint")
    max_body_bytes: int = Field(LIMITS.max_body_bytes, gt=0, description="largest accepted upload")
    max_pixels: int = Field(LIMITS.max_pixels, gt=0, description="largest accepted photo, in pixels")
    max_output_side: int = Field(LIMITS.max_output_side, gt=0, description="largest max_side a caller may ask for")
    request_budget_s: float = Field(30.0, gt=0, description="longest a caller waits for one image request; "
                                                            "the Triton call gets what is left of it (504 after)")
    upload_timeout_s: float = Field(10.0, gt=0, description="longest time to receive the whole body (408 after)")
    max_in_flight: int = Field(64, ge=1, description="image requests served at once by this process (503 beyond)")
    max_upload_bytes_in_flight: int | None = Field(
        None, gt=0, description="upload bytes this process may hold at once (declared Content-Length, or the "
                                "body limit for a chunked body); 503 beyond. Unset: a quarter of "
                                "GATEWAY_MEMORY_LIMIT_BYTES, or 512 MiB")
    memory_limit_bytes: int | None = Field(None, gt=0, description="the container's memory limit (the chart sets it "
                                                                   "from the pod spec); sizes the upload budget")
    max_connections: int = Field(1024, ge=1, description="open connections and requests of this process, all "
                                                         "routes; uvicorn answers 503 beyond")
    max_in_flight_per_tenant: int = Field(16, ge=1, description="image requests of one tenant at once (429 beyond)")
    access_log: bool = Field(True, description="one JSON line per request on stdout (gateway.request_log): id, "
                                               "route, status, time, bytes, tenant, key id, credits; no photo, "
                                               "query string, key or client address")
    max_unbilled_failures_per_minute: int = Field(
        30, ge=1, description="failed requests per tenant and minute that reached Triton and were not billed "
                              "(corrupt photo, over budget, client gone); 429 beyond")
    max_replays_per_key: int = Field(10, ge=0, description="times one Idempotency-Key may be answered again "
                                                           "(each re-runs inference; 429 beyond)")
    auth_cache_ttl_s: float = Field(5.0, ge=0, description="seconds a verified API key is trusted without a database "
                                                          "read: a revoked key stops working within this time; 0 off")
    cors_origins: list[str] = Field([], description="origins allowed to call from a browser; empty turns CORS off")
    shutdown_grace_s: float = Field(20.0, ge=0, description="on SIGTERM, time left to requests in flight")
    database_url: str = Field("sqlite:///build/gateway.db",
                              description="SQLAlchemy URL: SQLite file (one replica) or "
                                          "postgresql+psycopg://... (several)")
    database_schema: str | None = Field(None, description="PostgreSQL schema (search_path) holding the tables")
    redis_url: str | None = Field(None, description="redis://host:port/db shares rate limits between replicas; "
                                                    "unset keeps them in this process")
    shared_state: bool = Field(False, description="this process is one of several replicas (the chart sets it when "
                                                "replicas or autoscaling allow more than one): refuse a SQLite "
                                                "database and an unset redis_url, which would give each replica "
                                                "its own balances and limits")
    bootstrap_api_key: SecretStr | None = Field(
        None, description="creates an admin tenant accepting this key at start-up (idempotent; >= 32 characters)")
    bootstrap_credits: int = Field(1_000_000_000, ge=0, description="credits of a newly created admin tenant")
    bootstrap_rate_per_s: float = Field(1000.0, gt=0)
    bootstrap_burst: int = Field(1000, ge=1)
    price_base_credits: dict[str, int] = Field(
        {}, description="credits per request by operation, overriding the declared prices of contract/product.py "
                        "(see gateway.ledger.PriceTable for the formula)")
    price_per_megapixel_credits: float = Field(PRODUCT.per_megapixel_credits, ge=0,
                                               description="credits per input megapixel, rounded up")

    @field_validator("bootstrap_api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        """``GATEWAY_BOOTSTRAP_API_KEY=`` (an empty value, as a template often renders) means no key."""
        return None if value == "" else value

    @field_validator("max_body_bytes", "max_pixels", "max_output_side")
    @classmethod
    def _within_declared_limits(cls, value: int, info: ValidationInfo) -> int:
        declared = getattr(LIMITS, info.field_name)
        if value > declared:
            raise ValueError(f"{value} is over the declared limit of {declared}: {DECLARED}, or set a smaller value")
        return value

    @property
    def upload_budget_bytes(self) -> int:
        """At most a quarter of the memory: each upload is held two or three times at its peak."""
        if self.max_upload_bytes_in_flight is not None:
            return self.max_upload_bytes_in_flight
        return self.memory_limit_bytes // 4 if self.memory_limit_bytes is not None else 512 * 1024 * 1024

    @model_validator(mode="after")
    def _replicas_share_their_state(self) -> GatewaySettings:
        if not self.shared_state:
            return self
        if self.database_url.startswith("sqlite"):
            raise ValueError("GATEWAY_DATABASE_URL is SQLite, but GATEWAY_SHARED_STATE says several replicas run: "
                             "each would keep its own balances. Use postgresql+psycopg://... or run one replica")
        if not self.redis_url:
            raise ValueError("GATEWAY_REDIS_URL is unset, but GATEWAY_SHARED_STATE says several replicas run: each "
                             "would admit a key's whole rate limit. Set redis://host:port/db or run one replica")
        return self

    @field_validator("price_base_credits")
    @classmethod
    def _known_operations(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(PRODUCT.operation_names))
        if unknown or any(v < 0 for v in value.values()):
            raise ValueError(f"price_base_credits takes a non-negative price per operation, e.g. "
                             f'{{"{PRODUCT.operation_names[0]}": 1}}; the operations are '
                             f"{', '.join(PRODUCT.operation_names)}, unknown: {unknown}")
        return value


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
