"""Settings: one typed object, read from TENANTRY_* environment variables, validated at start."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTRY_", extra="ignore", frozen=True)

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./tenantry.db"
    # Pool size per worker; PostgreSQL only (SQLite uses one writer and a few readers).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Requests whose body is larger than this are refused before the body is read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    default_token_days: int = Field(default=90, ge=1, le=3650)
    invite_ttl_days: int = Field(default=7, ge=1, le=365)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Tokens are looked up at most this often when unchanged; 0 disables the auth cache.
    auth_cache_seconds: float = Field(default=0.0, ge=0.0, le=60.0)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "TENANTRY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; tests pass overrides instead of patching."""
    return Settings(**overrides)  # type: ignore[arg-type]
