"""The vector store: one Milvus collection of sequence embeddings, reached through an alias.

:class:`VectorStore` talks to Milvus Lite (a local ``.db`` path, the default) or a Milvus
server (``http://host:19530`` plus a token) through the same ``MilvusClient`` calls. The
collection name users see is an alias (``rinalmo_search``) that points at a versioned physical
collection (``rinalmo_search_v1``, ``_v2``, ...), so a rebuilt index can be swapped in with one
``alter_alias``.

The class is assembled from one module per concern, each a mixin over
:class:`~.base.StoreBase` (the client and shared state):

========================  ==================================================================
:mod:`.connection`        URIs, Milvus Lite paths and locks, one-line Milvus errors
:mod:`.guard`             the model a collection holds, and refusing another
:mod:`.versions`          creating the collection, versions behind the alias, swapping them
:mod:`.writes`            de-duplicated inserts, upserts, deletes, flushes; input limits
:mod:`.search`            searches, counts, look-ups by id, filters
:mod:`.index_checks`      the index Milvus really built, and waiting for it
========================  ==================================================================
"""

from __future__ import annotations

from .base import CONSISTENCY_LEVELS, DEFAULT_CONSISTENCY, LOOKUP_BATCH
from .connection import is_server_uri
from .guard import ModelGuard
from .index_checks import IndexCheck, IndexChecks
from .search import HIT_FIELDS, Reads, build_filter
from .versions import Versions, version_name
from .writes import WRITE_BATCH, WRITE_BATCH_BYTES, Writes, check_limits

__all__ = [
    "CONSISTENCY_LEVELS",
    "DEFAULT_CONSISTENCY",
    "HIT_FIELDS",
    "LOOKUP_BATCH",
    "WRITE_BATCH",
    "WRITE_BATCH_BYTES",
    "IndexCheck",
    "VectorStore",
    "build_filter",
    "check_limits",
    "is_server_uri",
    "version_name",
]


class VectorStore(ModelGuard, Versions, Writes, Reads, IndexChecks):
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

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
