"""Opening Milvus: server URIs, Milvus Lite paths and their one-process lock, and errors.

Milvus Lite (a local ``.db`` path) runs embedded in this process and can be opened by one
process at a time; a server URI (``http://host:19530``) is reached over gRPC. Both go through
``MilvusClient``. :func:`milvus_errors` turns every refusal into a one-line
:class:`~rinalmo_search.errors.StoreError` that says what was being done.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pymilvus import MilvusClient, MilvusException

from rinalmo_search.config import mask_secrets, mask_uri
from rinalmo_search.errors import ConfigError, StoreError
from rinalmo_search.seqio import cannot_write_in

_SERVER_URI = re.compile(r"^(https?|tcp|grpc|unix)://", re.IGNORECASE)
CONNECT_FAILED = 2  # pymilvus Status.CONNECT_FAILED: "Fail connecting to server on HOST:PORT"

#: Open stores per Milvus Lite path in this process (the embedded server is shared).
_LITE_USERS: dict[str, int] = {}


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server URI (``http://host:19530``), False for a Milvus Lite path."""
    return bool(_SERVER_URI.match(uri))


def one_line(message: object) -> str:
    """A Milvus message on one line: its non-empty lines, stripped, joined with spaces."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


@contextmanager
def milvus_errors(action: str) -> Iterator[None]:
    """Turn a MilvusException into a one-line StoreError that says what was being done."""
    try:
        yield
    except MilvusException as error:
        if error.code == CONNECT_FAILED:  # e.g. the server stopped or died meanwhile
            raise StoreError(
                f"Milvus server unreachable (stopped or restarting?) while trying to {action}: "
                f"{one_line(error.message)}"
            ) from error
        raise StoreError(
            f"Milvus refused to {action}: {one_line(error.message)} (code {error.code})"
        ) from error


def connect(uri: str, token: str, *, create: bool) -> tuple[MilvusClient, str, bool]:
    """Open a client on a Milvus Lite path or a server URI.

    Returns:
        The client, the URI to show in messages (a Lite path made absolute, a server URI with
        its password masked) and whether it is Milvus Lite.

    Raises:
        ConfigError: a Lite path that does not end in ``.db``.
        StoreError: see :class:`~rinalmo_search.milvus.VectorStore`.
    """
    connect_uri = str(uri)
    shown = mask_uri(connect_uri)  # the secret goes to the client only
    is_lite = not is_server_uri(connect_uri)
    if is_lite:
        path = Path(connect_uri).expanduser()
        if path.suffix != ".db":
            raise ConfigError(
                f"Invalid Milvus Lite path {connect_uri!r} (expected a path ending in '.db', "
                "or a server URI such as http://127.0.0.1:19530)"
            )
        path = path.absolute()
        _check_lite_path(path, create=create)
        path.parent.mkdir(parents=True, exist_ok=True)
        shown = connect_uri = str(path.resolve())
    try:
        client = MilvusClient(uri=connect_uri, token=token)
    except MilvusException as error:
        where = "Milvus Lite file" if is_lite else "Milvus server"
        hint = " (-vv shows Milvus Lite's own reason)" if is_lite else ""
        message = f"Cannot open {where} {shown!r}: {one_line(error.message)}{hint}"
        raise StoreError(mask_secrets(message, token)) from error
    except Exception as error:  # noqa: BLE001 - pymilvus raises bare errors on connect
        message = f"Cannot open Milvus at {shown!r}: {one_line(error)}"
        raise StoreError(mask_secrets(message, token)) from error
    if is_lite:
        _LITE_USERS[shown] = _LITE_USERS.get(shown, 0) + 1
    return client, shown, is_lite


def release_lite(path: str) -> None:
    """Stop this process's embedded Milvus Lite server for ``path`` once nobody uses it.

    ``MilvusClient.close`` leaves the embedded server (and its lock on the database) running
    until the process exits, and neither pymilvus nor milvus-lite has a public call to stop
    it. ``milvus_lite.server_manager.server_manager_instance`` is the hook pymilvus itself
    imports to start that server (``pymilvus.client.connection_manager``), so it is the one
    stable place to stop it; the import is confined to this function.
    """
    users = _LITE_USERS.get(path, 0) - 1
    if users > 0:
        _LITE_USERS[path] = users
        return
    _LITE_USERS.pop(path, None)
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # another Milvus Lite release without this hook: freed at exit
        return
    server_manager_instance.release_server(path)


def _check_lite_path(path: Path, *, create: bool) -> None:
    """Say what is wrong with a Milvus Lite path before Milvus Lite fails with a vague message.

    Milvus Lite 3 keeps a database in a folder (``LOCK``, ``collections/``, ...), writes to it
    even to search it (it takes a lock and replays its log), and lets one process open it.

    Raises:
        StoreError: ``path`` is a file or a foreign folder, is missing and ``create`` is
            false, cannot be written, or another process holds it.
    """
    if not path.exists():
        if not create:
            raise StoreError(
                f"No database at {path} (check --db; 'rinalmo-search index FASTA --db {path}' "
                "creates one)"
            )
        existing = path.parent
        while not existing.exists():
            existing = existing.parent
        reason = cannot_write_in(existing)
        if reason:
            raise StoreError(
                f"Cannot create a Milvus Lite database at {path}: cannot write in {existing} "
                f"({reason})"
            )
        return
    if not path.is_dir():
        raise StoreError(
            f"{path} is a file, not a Milvus Lite database (Milvus Lite 3 keeps a database in "
            "a folder); give --db a new path or an existing database"
        )
    lock = path / "LOCK"
    if not lock.exists():
        if not any(path.iterdir()):
            if not create:
                raise StoreError(f"No database at {path} (an empty folder)")
        elif not (path / "collections").is_dir():
            raise StoreError(
                f"{path} is a folder but not a Milvus Lite database (no LOCK file or "
                "collections/ in it); give --db another path"
            )
        reason = cannot_write_in(path)
        if reason:
            raise StoreError(_read_only_message(path, reason))
        return
    try:
        descriptor = os.open(lock, os.O_RDWR)
    except OSError as error:
        raise StoreError(_read_only_message(path, error.strerror or str(error))) from None
    try:
        if str(path.resolve()) not in _LITE_USERS:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"Cannot open Milvus Lite file {str(path)!r}: another process is using it "
                    "(a Milvus Lite database can be opened by one process at a time; use a "
                    "Milvus server for concurrent access)"
                ) from None
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _read_only_message(path: Path, reason: str) -> str:
    return (
        f"Cannot write to Milvus Lite database {path} ({reason}): Milvus Lite must write to a "
        "database to open it, even to search it, so a read-only one cannot be used; copy it "
        "to a writable folder (cp -r) or serve it from a Milvus server"
    )
