"""Gateway settings from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    triton_grpc_url: str = Field("127.0.0.1:8001", description="host:port of Triton's gRPC endpoint")
    max_body_bytes: int = Field(30 * 1024 * 1024, gt=0, description="largest accepted upload")
    max_pixels: int = Field(40_000_000, gt=0, description="largest accepted photo, in pixels")
    max_output_side: int = Field(8192, gt=0, description="largest max_side a caller may ask for")
    triton_timeout_s: float = Field(30.0, gt=0, description="deadline of one Triton call")


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
