"""Options shared by several sub-commands, and turning them into :class:`Settings`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rinalmo_search.config import Settings, load_settings
from rinalmo_search.errors import ConfigError
from rinalmo_search.seqio import STDIO


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--db`` and ``--collection`` (the Milvus token comes from the environment only)."""
    group = parser.add_argument_group("vector store")
    group.add_argument(
        "--db",
        metavar="URI",
        help="Milvus Lite file (e.g. rna.db) or server URI (http://host:19530); "
        "default: $RINALMO_SEARCH_DB or a file under ~/.local/share/rinalmo-search. "
        "A server token is read from $RINALMO_SEARCH_MILVUS_TOKEN.",
    )
    group.add_argument(
        "--collection", metavar="NAME", help="collection or alias (default: rinalmo_search)"
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--embedder`` and ``--triton-url``."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help="model name (list: 'rinalmo-search models') or a model file (default: shipped model)",
    )
    group.add_argument(
        "--embedder",
        choices=("local", "triton"),
        help="run the model in this process (local) or on a Triton server (default: local)",
    )
    group.add_argument("--triton-url", metavar="HOST:PORT", help="Triton gRPC endpoint")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by whichever options the command defines."""
    names = ("db", "collection", "model", "embedder", "triton_url", "threads", "batch_size")
    return load_settings(**{name: getattr(args, name, None) for name in names})


def require_positive(args: argparse.Namespace, *names: str) -> None:
    """Check that the integer options ``names`` (attribute names) are at least 1 where given.

    Raises:
        ConfigError: ``Invalid --top-k value 0: expected a positive integer``.
    """
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            option = f"--{name.replace('_', '-')}"
            raise ConfigError(f"Invalid {option} value {value}: expected a positive integer")


def refuse_inside_database(settings: Settings, outputs: dict[str, str | None]) -> None:
    """Check that no output (option → path) is a Milvus Lite database folder or inside one.

    Raises:
        ConfigError: ``--fasta-out rna.db`` would write query folders into the database.
    """
    from rinalmo_search.milvus.store import is_server_uri

    if not settings.db or is_server_uri(settings.db):
        return
    database = Path(settings.db).expanduser().resolve()
    for option, value in outputs.items():
        if value is None or value == STDIO:
            continue
        path = Path(value).expanduser().resolve()
        if path == database or database in path.parents:
            raise ConfigError(
                f"{option} {value}: is inside the database {settings.db}; refusing to write there"
            )
