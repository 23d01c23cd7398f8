"""Settings shared by every command, validated by pydantic.

Values come from (highest first): command-line options, environment variables prefixed
``RINALMO_SEARCH_`` (e.g. ``RINALMO_SEARCH_DB``, ``RINALMO_SEARCH_MILVUS_TOKEN``,
``RINALMO_SEARCH_TRITON_URL``), then the defaults below. Endpoints and secrets are read from the
environment so Galaxy admins never pass them as tool parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/rinalmo-search`` (default ``~/.local/share/rinalmo-search``)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "rinalmo-search"


class Settings(BaseSettings):
    """Run-time settings of RiNALMo-Search."""

    model_config = SettingsConfigDict(env_prefix="RINALMO_SEARCH_", extra="ignore")

    db: str = Field(
        default_factory=lambda: str(user_data_dir() / "rinalmo_search.db"),
        description="Milvus Lite file path, or a Milvus server URI (http://host:19530)",
    )
    milvus_token: str = Field(default="", description="token for a Milvus server ('user:password')")
    collection: str = Field(default="rinalmo_search", description="collection (or alias) name")
    model: str = Field(default="", description="model name or path; empty = the default model")
    embedder: str = Field(default="local", pattern="^(local|triton)$")
    triton_url: str = Field(default="127.0.0.1:8001", description="Triton gRPC host:port")
    threads: int = Field(default=max(1, min(os.cpu_count() or 1, 8)), ge=1)
    batch_size: int = Field(default=256, ge=1)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides`` (``None`` values are ignored)."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
