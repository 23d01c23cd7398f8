"""Milvus vector store of sequence embeddings (Milvus Lite by default, or a Milvus server).

Public interface: :class:`VectorStore`, :class:`IndexSettings`, :func:`build_filter`; field
names live in :mod:`rinalmo_search.milvus.schema`.
"""

from .schema import IndexSettings
from .store import VectorStore, build_filter, check_limits, is_server_uri

__all__ = ["IndexSettings", "VectorStore", "build_filter", "check_limits", "is_server_uri"]
