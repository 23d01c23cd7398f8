"""Fixtures for the vector-store tests: real Milvus Lite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from milvus_testdata import MODEL
from rinalmo_search.milvus import VectorStore


@pytest.fixture
def lite_uri(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "vectors.db")


@pytest.fixture
def store(lite_uri: str) -> Iterator[VectorStore]:
    with VectorStore(lite_uri, collection="t") as opened:
        opened.ensure_collection(MODEL)
        yield opened
