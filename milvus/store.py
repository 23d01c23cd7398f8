"""The vector store: one Milvus collection of sequence embeddings, reached through an alias.

:class:`VectorStore` talks to Milvus Lite (a local ``.db`` path, the default) or a Milvus
server (``http://host:19530`` plus a token) through the same ``MilvusClient`` calls. The
collection name users see is an alias (``rinalmo_search``) that points at a versioned physical
collection (``rinalmo_search_v1``, ``_v2``, ...), so a rebuilt index can be swapped in with one
``alter_alias``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient, MilvusException
from rinalmo_search.embedder import ModelInfo

from rinalmo_search.config import mask_secrets, mask_uri
from rinalmo_search.errors import ConfigError, InputError, StoreError
from rinalmo_search.hits import Hit
from rinalmo_search.seqio import SequenceRecord, cannot_write_in

from . import schema as S
from .inspect import (
    IndexReport,
    lite_segment_files,
    lite_segment_indexes,
    lite_unindexed_segments,
)
from .schema import IndexSettings

log = logging.getLogger(__name__)

_SERVER_URI = re.compile(r"^(https?|tcp|grpc|unix)://", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_VERSION_SUFFIX = re.compile(r"^(?P<base>.+)_v(?P<n>\d+)$")
#: Rows per insert/upsert request (a 512-d float row is ~2 KB; requests stay well under 64 MB).
WRITE_BATCH = 1000
#: Bytes of sequence text per write request: long sequences (up to 64 KB each) must not push
#: a request past gRPC's 64 MB message limit.
WRITE_BATCH_BYTES = 16 * 1024 * 1024
CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")
#: Consistency of searches and counts. ``Strong`` makes a server wait for the next time tick on
#: every call (~200 ms whatever k); ``Bounded`` answers from what the query node has consumed
#: (writes older than a tick or so), which is all an ``index`` run in another process has made
#: by the time it returned (it flushes). Reads that must see this store's own fresh writes, and
#: the id look-ups that de-duplicate an index run, use ``Strong`` (see ``_read_consistency``).
DEFAULT_CONSISTENCY = "Bounded"
#: Stage-1 fields a search returns by default (``length`` is derived from the sequence).
HIT_FIELDS = (S.SEQUENCE, S.FAMILY, S.CLAN)
#: Ids per primary-key lookup.
LOOKUP_BATCH = 1000
#: Content hashes per ``content_hash in [...]`` query (Milvus Lite: ~0.3 ms per hash).
HASH_LOOKUP_BATCH = 1000
#: Stored scalar fields a search filter may use (named in messages about a bad filter).
_FILTER_FIELDS = (S.ID, S.FAMILY, S.CLAN, S.LENGTH, S.SOURCE)


#: Open stores per Milvus Lite path in this process (the embedded server is shared).
_LITE_USERS: dict[str, int] = {}


def _release_lite(path: str) -> None:
    """Stop this process's embedded Milvus Lite server for ``path`` once nobody uses it."""
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


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server URI (``http://host:19530``), False for a Milvus Lite path."""
    return bool(_SERVER_URI.match(uri))


def _version_number(name: str) -> int:
    match = _VERSION_SUFFIX.match(name)
    return int(match.group("n")) if match else 0


def version_name(alias: str, version: int) -> str:
    """Physical collection name of ``version`` behind ``alias`` (``name_v3``)."""
    return f"{alias}_v{version}"


CONNECT_FAILED = 2  # pymilvus Status.CONNECT_FAILED: "Fail connecting to server on HOST:PORT"


@contextmanager
def _milvus_errors(action: str) -> Iterator[None]:
    """Turn a MilvusException into a StoreError that says what was being done."""
    try:
        yield
    except MilvusException as error:
        if error.code == CONNECT_FAILED:  # e.g. the server stopped or died meanwhile
            raise StoreError(
                f"Milvus server unreachable (stopped or restarting?) while trying to {action}: "
                f"{error.message}"
            ) from error
        raise StoreError(
            f"Milvus refused to {action}: {error.message} (code {error.code})"
        ) from error


class VectorStore:
    """A collection of sequence embeddings in Milvus Lite or a Milvus server.

    Arguments:
        uri: a Milvus Lite path ending in ``.db`` (parent folders are created), or a server
            URI such as ``http://127.0.0.1:19530`` (a password in it, as in
            ``http://user:password@host``, is masked in :attr:`uri` and every message).
        collection: the alias (or plain collection name) to use.
        token: ``user:password`` or an API key for a server; ignored by Milvus Lite.
        index: HNSW parameters for new collections and for searches.
        consistency: Milvus consistency level of searches and counts. ``Bounded`` (default)
            answers at once from what the server has consumed, which includes everything an
            ``index`` run that has returned wrote; ``Strong`` sees every acknowledged write but
            makes a server wait for its next time tick (~200 ms per call). After this store
            has written, its own reads are ``Strong`` whatever this says.
        create: whether a missing Milvus Lite database may be created (``False`` for
            commands that only read: a mistyped path is then an error, not a new database).

    Raises:
        ConfigError: invalid collection name or Lite path.
        StoreError: Milvus could not be opened: no database at a Lite path (``create``
            false), a file, foreign or read-only folder there, a Lite database held by another
            process, or a server that does not answer (passwords masked in the message).
    """

    def __init__(
        self,
        uri: str,
        *,
        collection: str = "rinalmo_search",
        token: str = "",
        index: IndexSettings | None = None,
        consistency: str = DEFAULT_CONSISTENCY,
        create: bool = True,
    ) -> None:
        if not _NAME.match(collection):
            raise ConfigError(
                f"Invalid collection name {collection!r} (expected letters, digits and '_', "
                "starting with a letter or '_')"
            )
        # messages show the URI with its password masked; the secret goes to the client only
        connect_uri = str(uri)
        self.uri = mask_uri(connect_uri)
        self.alias = collection
        self.settings = index or IndexSettings()
        if consistency not in CONSISTENCY_LEVELS:
            raise ConfigError(
                f"Invalid consistency level {consistency!r} "
                f"(expected one of {', '.join(CONSISTENCY_LEVELS)})"
            )
        self.consistency = consistency
        self.is_lite = not is_server_uri(connect_uri)
        self._model: ModelInfo | None = None
        self._target: str | None = None
        self._loaded = False
        self._building = False
        self._stored: tuple[str, int] | None = None
        self._shared = True  # whether ids share content (read with the stored model)
        self._dirty = False
        self._wrote = False
        if self.is_lite:
            path = Path(connect_uri).expanduser()
            if path.suffix != ".db":
                raise ConfigError(
                    f"Invalid Milvus Lite path {connect_uri!r} (expected a path ending in '.db', "
                    "or a server URI such as http://127.0.0.1:19530)"
                )
            path = path.absolute()
            _check_lite_path(path, create=create)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.uri = connect_uri = str(path.resolve())
        try:
            self.client = MilvusClient(uri=connect_uri, token=token)
            if self.is_lite:
                _LITE_USERS[self.uri] = _LITE_USERS.get(self.uri, 0) + 1
        except MilvusException as error:
            where = "Milvus Lite file" if self.is_lite else "Milvus server"
            hint = " (-vv shows Milvus Lite's own reason)" if self.is_lite else ""
            message = f"Cannot open {where} {self.uri!r}: {error.message}{hint}"
            raise StoreError(mask_secrets(message, token)) from error
        except Exception as error:  # noqa: BLE001 - pymilvus raises bare errors on connect
            message = f"Cannot open Milvus at {self.uri!r}: {error}"
            raise StoreError(mask_secrets(message, token)) from error

    # ── lifecycle ───────────────────────────────────────────────────────────────────────

    def close(self) -> None:
        """Close the connection (safe to call twice).

        For Milvus Lite, the embedded server (and its lock on the file) is stopped when the
        last store of this process on that file closes, so another process can open it.
        """
        client = getattr(self, "client", None)
        if client is None:
            return
        client.close()
        self.client = None  # type: ignore[assignment]
        if self.is_lite:
            _release_lite(self.uri)

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ── collection and model guard ──────────────────────────────────────────────────────

    def physical_name(self) -> str | None:
        """The physical collection behind the alias, or ``None`` when there is none."""
        with _milvus_errors(f"look up collection {self.alias!r}"):
            if self.alias in self.client.list_aliases().get("aliases", []):
                return str(self.client.describe_alias(self.alias)["collection_name"])
            if self.client.has_collection(self.alias):
                return self.alias
        return None

    def exists(self) -> bool:
        """Whether the collection (or alias) exists."""
        return self.physical_name() is not None

    def check_filter(self, expression: str) -> None:
        """Check a filter expression on the collection now, before a long search.

        Does nothing for an empty expression or a missing collection (searching reports it).

        Raises:
            StoreError: Milvus cannot parse or apply the expression (one line, with the
                fields that can be filtered on).
        """
        if not expression.strip():
            return
        target = self.physical_name()
        if target is None:
            return
        self._ensure_loaded(target)
        # pymilvus logs every refused call with a traceback; this refusal is the answer
        rpc_log = logging.getLogger("pymilvus.decorators")
        was_disabled, rpc_log.disabled = rpc_log.disabled, True
        try:
            self.client.query(target, filter=expression, output_fields=[S.ID], limit=1)
        except MilvusException as error:
            reason = "; ".join(
                line.strip() for line in str(error.message).splitlines()
                if line.strip() and line.strip() != "^" and line.strip() != expression.strip()
            )
            raise StoreError(
                f"Invalid filter {expression!r}: {reason} (fields: {', '.join(_FILTER_FIELDS)}; "
                "e.g. 'clan == \"CL00001\" and length >= 50')"
            ) from None
        finally:
            rpc_log.disabled = was_disabled

    def ensure_collection(self, model: ModelInfo) -> None:
        """Create the collection for ``model`` if absent; otherwise check it matches ``model``.

        A new collection is created as ``<alias>_v1`` with the HNSW index, and the alias is
        pointed at it. Versions left without an alias (a run interrupted between the two
        steps) are adopted: the alias is pointed at the newest one.

        Raises:
            StoreError: the existing collection was built by another model or dimension.
        """
        target = self.physical_name()
        if target is None:
            existing = self.versions()
            if existing:
                target = existing[-1]
                log.warning("Alias %s was missing; pointing it at %s", self.alias, target)
            else:
                target = version_name(self.alias, 1)
                self._create(target, model)
            with _milvus_errors(f"create alias {self.alias!r} → {target!r}"):
                self.client.create_alias(target, self.alias)
            log.info("Collection %s (alias %s) holds model %s", target, self.alias, model.tag)
        self._target = target
        self.check_model(model)

    def versions(self) -> list[str]:
        """Physical collections ``<alias>_v<N>`` that exist, oldest version first."""
        with _milvus_errors("list collections"):
            names = self.client.list_collections()
        numbered = []
        for name in names:
            match = _VERSION_SUFFIX.match(name)
            if match and match.group("base") == self.alias:
                numbered.append((int(match.group("n")), name))
        return [name for _, name in sorted(numbered)]

    def create_version(self, model: ModelInfo) -> str:
        """Create the next version ``<alias>_v<N+1>`` and direct this store's writes to it.

        Searches through the alias (by this and other processes) keep using the active
        version until :meth:`promote` swaps the alias, so an index can be rebuilt (e.g. for a
        new model) without downtime.

        Returns:
            The new physical collection name.
        """
        existing = self.versions()
        last = _version_number(existing[-1]) if existing else 0
        target = version_name(self.alias, last + 1)
        self._create(target, model)
        self._target = target
        self._building = True
        self._loaded = False
        self.check_model(model)
        log.info("Created %s for model %s (alias %s unchanged)", target, model.tag, self.alias)
        return target

    def promote(self, name: str | None = None, *, drop_previous: bool = False) -> str | None:
        """Point the alias at ``name`` (default: the version this store writes to).

        The new version is flushed and loaded first, so searches switch over without a gap.

        Arguments:
            name: physical collection to activate.
            drop_previous: drop the collection the alias pointed at before.

        Returns:
            The physical collection the alias pointed at before (``None`` if there was none).

        Raises:
            StoreError: ``name`` does not exist or Milvus refused the change.
        """
        name = name or self._require_target()
        with _milvus_errors(f"look up collection {name!r}"):
            if not self.client.has_collection(name):
                raise StoreError(
                    f"Cannot promote {name!r}: no such collection (existing versions: "
                    f"{', '.join(self.versions()) or 'none'})"
                )
        previous = self.physical_name()
        if previous == self.alias:
            raise StoreError(
                f"{self.alias!r} is a plain collection, not an alias; cannot swap versions"
            )
        with _milvus_errors(f"prepare {name!r}"):
            self.client.flush(name)
            self.client.load_collection(name)
        with _milvus_errors(f"point alias {self.alias!r} at {name!r}"):
            if previous is None:
                self.client.create_alias(name, self.alias)
            else:
                self.client.alter_alias(name, self.alias)
        log.info("Alias %s → %s (was %s)", self.alias, name, previous)
        self._target, self._building, self._loaded, self._stored = name, False, False, None
        if drop_previous and previous and previous != name:
            self.drop_version(previous)
        return previous

    def drop_version(self, name: str) -> None:
        """Drop an inactive version.

        Raises:
            StoreError: ``name`` is the version the alias points at, or not a version of it.
        """
        if name == self.physical_name():
            raise StoreError(
                f"Refusing to drop {name!r}: alias {self.alias!r} points at it "
                "(promote another version first)"
            )
        if name not in self.versions():
            raise StoreError(
                f"{name!r} is not a version of {self.alias!r} (versions: "
                f"{', '.join(self.versions()) or 'none'})"
            )
        with _milvus_errors(f"drop collection {name!r}"):
            self.client.drop_collection(name)
        log.info("Dropped %s", name)

    def drop_all(self) -> None:
        """Drop the alias and every version behind it (all data of this collection)."""
        target = self.physical_name()
        with _milvus_errors(f"drop {self.alias!r}"):
            if target is not None and target != self.alias:
                self.client.drop_alias(self.alias)
            for name in [*self.versions(), *([target] if target == self.alias else [])]:
                self.client.drop_collection(name)
        self._target, self._building, self._loaded = None, False, False

    def _create(self, name: str, model: ModelInfo) -> None:
        # pymilvus waits for the index with AllocTimestamp, which Milvus Lite's in-process
        # gRPC server does not implement: it logs a traceback, pymilvus carries on.
        grpc_server_log = logging.getLogger("grpc._server")
        was_disabled = grpc_server_log.disabled
        grpc_server_log.disabled = self.is_lite or was_disabled
        try:
            self._create_collection(name, model)
        finally:
            grpc_server_log.disabled = was_disabled

    def _create_collection(self, name: str, model: ModelInfo) -> None:
        with _milvus_errors(f"create collection {name!r}"):
            self.client.create_collection(
                name,
                schema=S.build_schema(self.client, model.dim, description=f"model={model.tag}"),
                index_params=S.build_index_params(self.client, self.settings),
                consistency_level=DEFAULT_CONSISTENCY,
                properties={
                    S.PROPERTY_MODEL: model.tag,
                    S.PROPERTY_DIM: str(model.dim),
                    S.PROPERTY_SCHEMA: S.SCHEMA_VERSION,
                    S.PROPERTY_SHARED_CONTENT: "0",
                },
            )

    def stored_model(self) -> tuple[str, int]:
        """The model tag and vector dimension the collection was built for.

        Also notes whether ids of the collection share content
        (:data:`~.schema.PROPERTY_SHARED_CONTENT`), which searches use until it is read again.

        Raises:
            StoreError: the collection does not exist.
        """
        target = self._require_target()
        with _milvus_errors(f"describe collection {target!r}"):
            info = self.client.describe_collection(target)
        dim = next(
            (int(f["params"]["dim"]) for f in info["fields"] if f["name"] == S.VECTOR), 0
        )
        properties = info.get("properties") or {}
        self._shared = str(properties.get(S.PROPERTY_SHARED_CONTENT, "1")) != "0"
        tag = str(properties.get(S.PROPERTY_MODEL, ""))
        if not tag:
            tag = self._first_row_model(target)
        return tag, dim

    def _first_row_model(self, target: str) -> str:
        self._ensure_loaded(target)
        with _milvus_errors(f"read the model tag of {target!r}"):
            rows = self.client.query(
                target, filter=f'{S.ID} != ""', output_fields=[S.MODEL], limit=1
            )
        return str(rows[0][S.MODEL]) if rows else ""

    def check_model(self, model: ModelInfo) -> None:
        """Check the collection exists and was built by ``model`` (name, version and dim).

        Raises:
            StoreError: the collection is missing, or holds vectors of another model or size.
        """
        target = self._require_target()
        tag, dim = self._stored = self.stored_model()
        if dim != model.dim or (tag and tag != model.tag):
            raise StoreError(
                f"Collection {self.alias!r} ({target}) holds {dim}-d vectors of model "
                f"{tag or 'unknown'!r}, but the current model is {model.tag!r} with "
                f"{model.dim}-d vectors; search with the same model, or build a new "
                f"collection with 'rinalmo-search index --collection NAME ...'"
            )
        self._model = model
        self._ensure_loaded(target)

    def _require_target(self) -> str:
        if self._target is None:
            self._target = self.physical_name()
        if self._target is None:
            where = self.uri if self.is_lite else self.uri
            raise StoreError(
                f"Collection {self.alias!r} does not exist in {where}; create it with "
                f"'rinalmo-search index --db {self.uri} --collection {self.alias} FASTA'"
            )
        return self._target

    def _ensure_loaded(self, target: str) -> None:
        if self._loaded:
            return
        with _milvus_errors(f"load collection {target!r}"):
            state = self.client.get_load_state(target).get("state")
            if "Loaded" not in str(state):
                self.client.load_collection(target)
        self._loaded = True

    def _require_model(self) -> ModelInfo:
        if self._model is None:
            raise StoreError(
                "No model set for this store: call ensure_collection(model) or "
                "check_model(model) before writing"
            )
        return self._model

    # ── writes ──────────────────────────────────────────────────────────────────────────

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """id → content hash for those of ``ids`` already stored."""
        target = self._require_target()
        self._ensure_loaded(target)
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), LOOKUP_BATCH):
            chunk = unique[start : start + LOOKUP_BATCH]
            with _milvus_errors(f"look up {len(chunk)} ids in {target!r}"):
                # Strong: de-duplication must see every write, also another process's
                rows = self.client.get(
                    target,
                    ids=chunk,
                    output_fields=[S.ID, S.CONTENT_HASH],
                    consistency_level="Strong",
                )
            for row in rows:
                found[str(row[S.ID])] = str(row[S.CONTENT_HASH])
        return found

    def new_records(
        self, records: Sequence[SequenceRecord], *, upsert: bool = False
    ) -> list[SequenceRecord]:
        """The records that still need writing, in input order.

        A record whose id is stored with the same content hash is skipped. The same id with
        another content hash is an error, unless ``upsert`` (then it is returned for rewriting).
        Repeats of one id within ``records`` are returned once.

        Raises:
            StoreError: an id is stored with different content and ``upsert`` is false.
        """
        stored = self.stored_hashes([r.id for r in records])
        todo: list[SequenceRecord] = []
        seen: set[str] = set()
        for record in records:
            if record.id in seen:
                continue
            seen.add(record.id)
            old = stored.get(record.id)
            if old is None:
                todo.append(record)
            elif old != record.content_hash:
                if not upsert:
                    raise StoreError(
                        f"Sequence {record.id!r} ({record.source or 'input'}) is already stored "
                        f"in {self.alias!r} with a different sequence (content hash {old}, "
                        f"new {record.content_hash}); use --upsert to replace it"
                    )
                todo.append(record)
        return todo

    def insert(
        self,
        records: Sequence[SequenceRecord],
        vectors: np.ndarray,
        *,
        upsert: bool = False,
        checked: bool = False,
    ) -> int:
        """Write records and their vectors; returns the number of rows written.

        Without ``upsert``, records already stored with the same content are skipped (so a
        rerun of an interrupted job writes only what is missing), and changed content is an
        error. With ``upsert``, new and changed records are written, unchanged ones skipped.
        ``checked`` says the records came from :meth:`new_records` already (with the same
        ``upsert``), so the store does not look their ids up again.

        Raises:
            InputError: a field too long (:func:`check_limits`).
            StoreError: no model set, vectors of the wrong shape or not finite, or Milvus
                refused the write.
        """
        model = self._require_model()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(records), model.dim):
            raise StoreError(
                f"Expected vectors of shape ({len(records)}, {model.dim}) for "
                f"{len(records)} records of model {model.tag!r}, found {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
            raise StoreError(f"Vector of {records[bad].id!r} has NaN or infinite values")
        todo = list(records) if checked else self.new_records(records, upsert=upsert)
        if not todo:
            return 0
        position = {r.id: i for i, r in enumerate(records)}
        rows = [self._row(r, vectors[position[r.id]], model) for r in todo]
        target = self._require_target()
        written = 0
        for batch in _write_batches(rows):
            with _milvus_errors(f"write {len(batch)} rows to {target!r}"):
                if upsert:
                    self.client.upsert(target, batch)
                else:
                    self.client.insert(target, batch)
            written += len(batch)
            self._dirty = self._wrote = True
        if not self._shared:
            self._note_shared_content(target, [row[S.CONTENT_HASH] for row in rows])
        return written

    def _note_shared_content(self, target: str, hashes: list[str]) -> None:
        """Mark the collection when an id just written shares its content with another id.

        Checked after the write with ``Strong`` reads, so of two processes writing copies of
        one sequence at once, the later check sees both. Costs one scan of the collection per
        :data:`HASH_LOOKUP_BATCH` rows written, until the mark is set.
        """
        unique = list(dict.fromkeys(hashes))
        shared = len(unique) < len(hashes)
        for start in range(0, len(unique), HASH_LOOKUP_BATCH):
            if shared:
                break
            chunk = unique[start : start + HASH_LOOKUP_BATCH]
            with _milvus_errors(f"look up {len(chunk)} content hashes in {target!r}"):
                rows = self.client.query(
                    target,
                    filter=f"{S.CONTENT_HASH} in {json.dumps(chunk)}",
                    output_fields=[S.ID],
                    limit=len(chunk) + 1,
                    consistency_level="Strong",
                )
            shared = len(rows) > len(chunk)
        if shared:
            with _milvus_errors(f"mark {target!r} as holding shared sequences"):
                self.client.alter_collection_properties(
                    target, properties={S.PROPERTY_SHARED_CONTENT: "1"}
                )
            self._shared = True
            log.info("%s now holds ids that share a sequence", target)

    @staticmethod
    def _row(record: SequenceRecord, vector: np.ndarray, model: ModelInfo) -> dict[str, Any]:
        check_limits([record])
        source = record.source
        if len(source.encode("utf-8")) > S.MAX_SOURCE_LENGTH:
            source = source.encode("utf-8")[-S.MAX_SOURCE_LENGTH :].decode("utf-8", "ignore")
        return {
            S.ID: record.id,
            S.VECTOR: vector.tolist(),
            S.SEQUENCE: record.sequence,
            S.LENGTH: len(record.sequence),
            S.CONTENT_HASH: record.content_hash,
            S.FAMILY: record.family,
            S.CLAN: record.clan,
            S.SOURCE: source,
            S.MODEL: model.tag,
        }

    def flush(self) -> None:
        """Make written rows durable and indexed (Milvus Lite builds its HNSW graphs here)."""
        target = self._require_target()
        with _milvus_errors(f"flush {target!r}"):
            self.client.flush(target)
        self._dirty = False

    def delete(self, ids: Sequence[str]) -> int:
        """Delete sequences by id; returns how many of them were stored."""
        present = list(self.stored_hashes(ids))
        if not present:
            return 0
        target = self._require_target()
        for start in range(0, len(present), LOOKUP_BATCH):
            with _milvus_errors(f"delete ids from {target!r}"):
                self.client.delete(target, ids=present[start : start + LOOKUP_BATCH])
        self._dirty = self._wrote = True
        return len(present)

    # ── reads ───────────────────────────────────────────────────────────────────────────

    def count(self) -> int:
        """Number of sequences stored (deleted ones excluded)."""
        target = self._require_target()
        self._ensure_loaded(target)
        with _milvus_errors(f"count rows of {target!r}"):
            rows = self.client.query(
                target,
                filter="",
                output_fields=["count(*)"],
                consistency_level=self._read_consistency(),
            )
        return int(rows[0]["count(*)"])

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored fields (no vector) of those of ``ids`` that exist, in no particular order."""
        target = self._require_target()
        self._ensure_loaded(target)
        with _milvus_errors(f"get rows from {target!r}"):
            rows = self.client.get(
                target,
                ids=list(ids),
                output_fields=S.OUTPUT_FIELDS,
                consistency_level=self._read_consistency(),
            )
        return [dict(row) for row in rows]

    def _read_consistency(self) -> str:
        """``Strong`` once this store has written (its own rows must be seen), else the default.

        Not ``Session``: pymilvus keys a client's write timestamps by the collection name
        written to, and searches go through the alias.
        """
        return "Strong" if self._wrote else self.consistency

    def search(
        self,
        vectors: np.ndarray,
        *,
        top_k: int,
        filter: str = "",  # noqa: A002 - Milvus's own name for it
        ef: int | None = None,
        fields: Sequence[str] = HIT_FIELDS,
    ) -> list[list[Hit]]:
        """Nearest stored sequences of each query vector, best first.

        Arguments:
            vectors: ``(n, dim)`` query vectors (one row is accepted as a 1-D array).
            top_k: hits per query.
            filter: a Milvus boolean expression on the scalar fields, e.g.
                ``family == "RF00005" and length >= 50`` (see :func:`build_filter`).
            ef: HNSW search breadth (default from the index settings; at least ``top_k``).
            fields: stored fields to return with each hit, of ``sequence``, ``family``,
                ``clan``, ``length``, ``source``: ask only for what the caller needs (each
                field is read for all ``top_k`` hits). ``Hit.length`` comes from ``length``
                or, without it, from the sequence.

        Returns:
            One list of at most ``top_k`` :class:`Hit` per query row; ``score`` and
            ``embedding_score`` are the cosine similarity (inner product for
            ``metric="IP"``). Every id stored with the same sequence as a hit follows it, with
            its score, whether or not the HNSW graph reached it (one extra look-up by content
            hash per call, only in a collection where ids share content).

        Raises:
            StoreError: bad ``top_k`` or vector shape, an invalid filter, or a Milvus error.
        """
        if not isinstance(top_k, int) or top_k < 1:
            raise StoreError(f"Invalid 'top_k' value: {top_k!r} (expected a positive integer)")
        target = self._require_target()
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if self._stored is None or self._building:
            self._stored = self.stored_model()
        tag, dim = self._stored
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise StoreError(
                f"Expected query vectors of dimension {dim} (model {tag!r}), found shape "
                f"{queries.shape}"
            )
        if len(queries) == 0:
            return []
        if self._dirty:
            # Unflushed rows are searched by brute force (Lite) or from growing segments.
            self.flush()
        self._ensure_loaded(target)
        # Through the alias, so a version swapped in by `promote` is used at once.
        name = target if self._building else self.alias
        wanted = [f for f in fields if f != S.CONTENT_HASH]
        action = f"search {name!r}" + (f" with filter {filter!r}" if filter else "")
        with _milvus_errors(action):
            results = self.client.search(
                name,
                data=queries.tolist(),
                limit=top_k,
                filter=filter,
                output_fields=[*wanted, S.CONTENT_HASH],
                search_params=self.settings.search_params(top_k, ef),
                anns_field=S.VECTOR,
                consistency_level=self._read_consistency(),
            )
        found = [[_raw_hit(hit) for hit in hits] for hits in results]
        copies = self._same_content(name, found, filter, wanted, action) if self._shared else {}
        return [_with_copies(hits, copies, top_k) for hits in found]

    def _same_content(
        self,
        name: str,
        found: list[list[dict[str, Any]]],
        filter: str,  # noqa: A002
        fields: list[str],
        action: str,
    ) -> dict[str, list[dict[str, Any]]]:
        """content hash → every stored row with it (passing ``filter``), for the hits' hashes.

        HNSW can leave some of several identical vectors unreachable (issue 15: 2 of 18,000
        rows, six ids per sequence, never found even at ef=2,000), so a search hands back
        every id stored with the content of a hit instead of trusting the graph to reach each.
        """
        hashes = list(dict.fromkeys(h[S.CONTENT_HASH] for hits in found for h in hits))
        rows: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(hashes), HASH_LOOKUP_BATCH):
            chunk = hashes[start : start + HASH_LOOKUP_BATCH]
            expression = f"{S.CONTENT_HASH} in {json.dumps(chunk)}"
            with _milvus_errors(action):
                for row in self.client.query(
                    name,
                    filter=f"({expression}) and ({filter})" if filter else expression,
                    output_fields=[S.ID, S.CONTENT_HASH, *fields],
                    consistency_level=self._read_consistency(),
                ):
                    rows.setdefault(str(row[S.CONTENT_HASH]), []).append(dict(row))
        for same in rows.values():
            same.sort(key=lambda row: str(row[S.ID]))
        return rows

    def describe_index(self) -> dict[str, Any]:
        """Milvus's description of the vector index (type, metric, parameters, progress)."""
        target = self._require_target()
        with _milvus_errors(f"describe the index of {target!r}"):
            return dict(self.client.describe_index(target, S.VECTOR))

    def index_report(self) -> IndexReport:
        """What index Milvus really built, checked against this store's settings.

        For Milvus Lite the faiss index files of every flushed segment are read back, because
        Lite accepts parameters it then ignores (flat ``M=...`` builds M=16).
        """
        target = self._require_target()
        description = self.describe_index()
        segments = lite_segment_indexes(self.uri, target) if self.is_lite else []
        return IndexReport(target, self.settings, description, segments)

    def verify_index(self) -> IndexReport:
        """Like :meth:`index_report`, raising if the index is not the HNSW that was asked for.

        Raises:
            StoreError: another index type, metric or parameters (the message lists them).
        """
        report = self.index_report()
        problems = report.problems()
        if problems:
            raise StoreError(
                f"Index of {report.collection!r} is not the requested HNSW "
                f"(M={self.settings.M}, efConstruction={self.settings.ef_construction}, "
                f"{self.settings.metric}): " + "; ".join(problems)
            )
        return report

    def wait_for_index(
        self, timeout: float = 3600.0, poll: float = 0.5, settle: float = 3.0
    ) -> float:
        """Block until every flushed row is covered by the vector index.

        Milvus Lite builds HNSW graphs in a background thread after :meth:`flush` and may then
        merge segments (compaction) and build again, searching unindexed segments by brute
        force meanwhile; so for Lite the segment list must also stay unchanged for ``settle``
        seconds. A server reports ``pending_index_rows``.

        Returns:
            Seconds waited.

        Raises:
            StoreError: the index is not complete after ``timeout`` seconds.
        """
        target = self._require_target()
        started = time.perf_counter()
        last_change = started
        segments: list[str] = []
        while True:
            now = time.perf_counter()
            if self.is_lite:
                current = [str(f) for f in lite_segment_files(self.uri, target)]
                pending = len(lite_unindexed_segments(self.uri, target))
                if current != segments or pending:
                    segments, last_change = current, now
                done = pending == 0 and now - last_change >= settle
            else:
                info = self.describe_index()
                pending = int(info.get("pending_index_rows", 0)) + max(
                    0, int(info.get("total_rows", 0)) - int(info.get("indexed_rows", 0))
                )
                done = pending == 0
            if done:
                # Lite: the build ended before the segment list settled.
                return (last_change if self.is_lite else now) - started
            if now - started > timeout:
                unit = "segments" if self.is_lite else "rows"
                raise StoreError(
                    f"Index of {target!r} still has {pending} {unit} unindexed after "
                    f"{timeout:.0f} s"
                )
            time.sleep(poll)


def check_limits(records: Sequence[SequenceRecord]) -> None:
    """Check every record fits the store's fields, before anything is written.

    Limits (bytes of UTF-8, from :mod:`~rinalmo_search.milvus.schema`): id
    :data:`~.schema.MAX_ID_LENGTH`, sequence :data:`~.schema.MAX_SEQUENCE_LENGTH`, family and
    clan :data:`~.schema.MAX_LABEL_LENGTH`; a longer source is cut, not refused.

    Raises:
        InputError: the first record over a limit, named by its ``path:line``.
    """
    for record in records:
        for name, value, limit in (
            (S.ID, record.id, S.MAX_ID_LENGTH),
            (S.SEQUENCE, record.sequence, S.MAX_SEQUENCE_LENGTH),
            (S.FAMILY, record.family, S.MAX_LABEL_LENGTH),
            (S.CLAN, record.clan, S.MAX_LABEL_LENGTH),
        ):
            size = len(value.encode("utf-8"))
            if size > limit:
                unit = "nt" if name == S.SEQUENCE else "bytes"
                raise InputError(
                    f"{record.source or 'input'}: record {record.id[:80]!r}: {name} is {size:,} "
                    f"{unit} long, the store accepts at most {limit:,}; nothing was written"
                )


def _write_batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split rows into requests of at most WRITE_BATCH rows and WRITE_BATCH_BYTES of text."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(row[S.SEQUENCE]) + len(row[S.SOURCE]) + 4 * len(row[S.VECTOR]) + 256
        if batch and (len(batch) >= WRITE_BATCH or size + row_size > WRITE_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def _raw_hit(hit: Any) -> dict[str, Any]:
    """A search result as a plain dict: its fields, ``id`` and ``distance``."""
    entity = hit.get("entity", {}) if isinstance(hit, dict) else hit.entity
    return {**entity, S.ID: str(hit["id"]), "distance": float(hit["distance"])}


def _with_copies(
    hits: list[dict[str, Any]], copies: dict[str, list[dict[str, Any]]], top_k: int
) -> list[Hit]:
    """``hits`` best first, each followed by the other ids of its content (same score)."""
    out: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        for row in [hit, *copies.get(hit[S.CONTENT_HASH], [])]:
            if row[S.ID] not in seen:
                seen.add(row[S.ID])
                out.append(_to_hit(row, hit["distance"]))
    return out[:top_k]


def _to_hit(entity: dict[str, Any], score: float) -> Hit:
    sequence = str(entity.get(S.SEQUENCE) or "")
    return Hit(
        target_id=str(entity[S.ID]),
        score=score,
        family=str(entity.get(S.FAMILY) or ""),
        clan=str(entity.get(S.CLAN) or ""),
        length=int(entity.get(S.LENGTH) or len(sequence)),
        sequence=sequence,
        embedding_score=score,
    )


def build_filter(
    *,
    family: str | Sequence[str] | None = None,
    clan: str | Sequence[str] | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    source: str | None = None,
) -> str:
    """A Milvus filter expression from common criteria, values quoted safely.

    Arguments:
        family: one family accession or several (any of them).
        clan: one clan accession or several.
        min_length: keep sequences at least this long.
        max_length: keep sequences at most this long.
        source: keep sequences whose source starts with this text.

    Returns:
        The expression (``""`` when no criterion is given), e.g.
        ``family in ["RF00005"] and length >= 50``.
    """
    parts: list[str] = []
    for name, value in ((S.FAMILY, family), (S.CLAN, clan)):
        if value:
            values = [value] if isinstance(value, str) else list(value)
            parts.append(f"{name} in {json.dumps(values)}")
    if min_length is not None:
        parts.append(f"{S.LENGTH} >= {int(min_length)}")
    if max_length is not None:
        parts.append(f"{S.LENGTH} <= {int(max_length)}")
    if source:
        escaped = source.replace("\\", "\\\\").replace('"', '\\"').replace("%", "\\%")
        parts.append(f'{S.SOURCE} like "{escaped}%"')
    return " and ".join(parts)
