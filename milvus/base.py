"""What every part of :class:`~rinalmo_search.milvus.VectorStore` shares: the open client,
the collection it works on, and the consistency rules of its reads.

The store's methods live in one module per concern (:mod:`.guard`, :mod:`.versions`,
:mod:`.writes`, :mod:`.search`, :mod:`.index_checks`), each a mixin over :class:`StoreBase`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rinalmo_search.embedder import ModelInfo

from rinalmo_search.errors import ConfigError, StoreError

from .connection import connect, milvus_errors, release_lite
from .schema import IndexSettings

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")
#: Consistency of searches and counts. ``Strong`` makes a server wait for the next time tick on
#: every call (~200 ms whatever k); ``Bounded`` answers from what the query node has consumed
#: (writes older than a tick or so), which is all an ``index`` run in another process has made
#: by the time it returned (it flushes). Reads that must see this store's own fresh writes, and
#: the id look-ups that de-duplicate an index run, use ``Strong`` (see ``_read_consistency``).
DEFAULT_CONSISTENCY = "Bounded"
#: Ids per primary-key lookup.
LOOKUP_BATCH = 1000
#: Content hashes per ``content_hash in [...]`` query (Milvus Lite: ~0.3 ms per hash).
HASH_LOOKUP_BATCH = 1000


class StoreBase:
    """The connection and state of a store (see :class:`~rinalmo_search.milvus.VectorStore`,
    which documents the arguments)."""

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
        self.alias = collection
        self.settings = index or IndexSettings()
        if consistency not in CONSISTENCY_LEVELS:
            raise ConfigError(
                f"Invalid consistency level {consistency!r} "
                f"(expected one of {', '.join(CONSISTENCY_LEVELS)})"
            )
        self.consistency = consistency
        self._model: ModelInfo | None = None
        self._target: str | None = None
        self._loaded = False
        self._building = False
        self._stored: tuple[str, int] | None = None
        self._shared = True  # whether ids share content (read with the stored model)
        self._dirty = False
        self._wrote = False
        self.client, self.uri, self.is_lite = connect(uri, token, create=create)

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
            release_lite(self.uri)

    def physical_name(self) -> str | None:
        """The physical collection behind the alias, or ``None`` when there is none."""
        with milvus_errors(f"look up collection {self.alias!r}"):
            if self.alias in self.client.list_aliases().get("aliases", []):
                return str(self.client.describe_alias(self.alias)["collection_name"])
            if self.client.has_collection(self.alias):
                return self.alias
        return None

    def exists(self) -> bool:
        """Whether the collection (or alias) exists."""
        return self.physical_name() is not None

    def _require_target(self) -> str:
        if self._target is None:
            self._target = self.physical_name()
        if self._target is None:
            raise StoreError(
                f"Collection {self.alias!r} does not exist in {self.uri}; create it with "
                f"'rinalmo-search index --db {self.uri} --collection {self.alias} FASTA'"
            )
        return self._target

    def _ensure_loaded(self, target: str) -> None:
        if self._loaded:
            return
        with milvus_errors(f"load collection {target!r}"):
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

    def _read_consistency(self) -> str:
        """``Strong`` once this store has written (its own rows must be seen), else the default.

        Not ``Session``: pymilvus keys a client's write timestamps by the collection name
        written to, and searches go through the alias.
        """
        return "Strong" if self._wrote else self.consistency

    if TYPE_CHECKING:  # provided by the mixins (.guard, .writes), used across them

        def stored_model(self) -> tuple[str, int]: ...

        def check_model(self, model: ModelInfo) -> None: ...

        def flush(self) -> None: ...
