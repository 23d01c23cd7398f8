"""Versions behind an alias: ``rinalmo_search`` → ``rinalmo_search_v1``, ``_v2``, ...

The collection name users see is an alias pointing at a versioned physical collection, so an
index rebuilt (e.g. for a new model) is swapped in with one ``alter_alias`` while searches go on.
"""

from __future__ import annotations

import logging
import re

from rinalmo_search.embedder import ModelInfo

from rinalmo_search.errors import StoreError

from . import schema as S
from .base import DEFAULT_CONSISTENCY, StoreBase
from .connection import milvus_errors

log = logging.getLogger(__name__)

_VERSION_SUFFIX = re.compile(r"^(?P<base>.+)_v(?P<n>\d+)$")


def _version_number(name: str) -> int:
    match = _VERSION_SUFFIX.match(name)
    return int(match.group("n")) if match else 0


def version_name(alias: str, version: int) -> str:
    """Physical collection name of ``version`` behind ``alias`` (``name_v3``)."""
    return f"{alias}_v{version}"


class Versions(StoreBase):
    """Creating the collection, its versions, and swapping the alias between them."""

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
            with milvus_errors(f"create alias {self.alias!r} → {target!r}"):
                self.client.create_alias(target, self.alias)
            log.info("Collection %s (alias %s) holds model %s", target, self.alias, model.tag)
        self._target = target
        self.check_model(model)

    def versions(self) -> list[str]:
        """Physical collections ``<alias>_v<N>`` that exist, oldest version first."""
        with milvus_errors("list collections"):
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
        with milvus_errors(f"look up collection {name!r}"):
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
        with milvus_errors(f"prepare {name!r}"):
            self.client.flush(name)
            self.client.load_collection(name)
        with milvus_errors(f"point alias {self.alias!r} at {name!r}"):
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
        with milvus_errors(f"drop collection {name!r}"):
            self.client.drop_collection(name)
        log.info("Dropped %s", name)

    def drop_all(self) -> None:
        """Drop the alias and every version behind it (all data of this collection)."""
        target = self.physical_name()
        with milvus_errors(f"drop {self.alias!r}"):
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
        with milvus_errors(f"create collection {name!r}"):
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
