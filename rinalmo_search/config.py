"""Settings shared by every command, validated by pydantic.

Values come from (highest first): command-line options, environment variables prefixed
``RINALMO_SEARCH_`` (e.g. ``RINALMO_SEARCH_DB``, ``RINALMO_SEARCH_MILVUS_TOKEN``,
``RINALMO_SEARCH_TRITON_URL``), then the defaults below. Endpoints and secrets are read from the
environment so Galaxy admins never pass them as tool parameters.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

ENV_PREFIX = "RINALMO_SEARCH_"
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:]*):[^/@]*@")


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/rinalmo-search`` (default ``~/.local/share/rinalmo-search``)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "rinalmo-search"


class Settings(BaseSettings):
    """Run-time settings of RiNALMo-Search."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

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
    """Settings from the environment with ``overrides`` (``None`` values are ignored).

    Raises:
        ConfigError: a value is invalid; the message names the option (``--threads``) or the
            environment variable (``RINALMO_SEARCH_BATCH_SIZE``) and the value, secrets masked.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        where = (
            f"--{field.replace('_', '-')}" if field in given else f"{ENV_PREFIX}{field.upper()}"
        )
        value = problem.get("input")
        shown = "***" if field == "milvus_token" else mask_secrets(repr(value))
        reason = str(problem["msg"])
        reason = reason[:1].lower() + reason[1:]
        raise ConfigError(f"Invalid {where} value {shown}: {reason}") from None


def mask_uri(uri: str) -> str:
    """``uri`` with the password of a ``scheme://user:password@host`` replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri, count=1)


def mask_secrets(text: str, *secrets: str) -> str:
    """``text`` with URI passwords and each of ``secrets`` (e.g. a token) replaced by ``***``.

    A token ``user:password`` also has its password part masked where it appears alone.
    """
    text = re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: mask_uri(m.group()), text)
    for secret in secrets:
        parts = [secret, secret.partition(":")[2]] if secret else []
        for part in parts:
            if len(part) >= 3:
                text = text.replace(part, "***")
    return text
