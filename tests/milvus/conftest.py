"""Fixtures for the vector-store tests: real Milvus Lite files and a real Milvus server.

Store tests take the ``target`` fixture, parametrised over ``lite`` (a fresh Milvus Lite
file per test) and ``server`` (a fresh collection on one Milvus standalone server per test
session, from the PyPI ``milvus==2.3.5`` package, started in the background by
``rinalmo_search.milvus.server``).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from milvus_testdata import MODEL, Target
from rinalmo_search.milvus import IndexSettings, VectorStore, server

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SERVER_START_TIMEOUT = 300.0
_names = itertools.count()


def _milvus_server_available() -> str:
    """Empty when the ``milvus`` server package is installed, else why not."""
    spec = importlib.util.find_spec("milvus")
    if spec is not None and spec.origin is not None and Path(spec.origin).parent == REPO / "milvus":
        # installed or not, a test run must not silently skip the server path for this
        raise RuntimeError(
            "'import milvus' finds this repository's milvus/ folder because the repository root "
            "is on sys.path (e.g. 'python -m pytest'); run the 'pytest' script instead"
        )
    if spec is None or spec.origin is None:
        return "the Milvus server package is not installed (pip install milvus==2.3.5)"
    return ""


@pytest.fixture(scope="session")
def milvus_server() -> Iterator[str]:
    """URI of a real Milvus standalone server running for the whole test session.

    Started and stopped by :mod:`rinalmo_search.milvus.server` (what ``rinalmo-search server``
    runs), on a free port and its own data folder, so it coexists with other servers.
    """
    reason = _milvus_server_available()
    if reason:
        pytest.skip(reason)
    with server_folder() as data:
        info, _ = server.start(data, free_port(), timeout=SERVER_START_TIMEOUT)
        try:
            yield info.uri
        finally:
            server.stop(data)


@contextmanager
def server_folder() -> Iterator[Path]:
    """A fresh data folder for a server, removed afterwards.

    Not under pytest's tmp_path: a pytest run that starts meanwhile on the same machine prunes
    all but the newest three base folders, a running server's data with them.
    """
    data = Path(tempfile.mkdtemp(prefix="rinalmo-test-milvus-"))
    try:
        yield data
    finally:
        shutil.rmtree(data, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on every interface now."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["lite", "server"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty collection location on Milvus Lite or on the Milvus server."""
    if request.param == "lite":
        yield Target("lite", str(tmp_path / "store" / "vectors.db"), "t")
        return
    uri = request.getfixturevalue("milvus_server")
    found = Target("server", uri, f"t{os.getpid()}_{next(_names)}")
    yield found
    with found.open() as store:
        store.drop_all()


@pytest.fixture
def lite_uri(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "vectors.db")


@pytest.fixture
def store(target: Target) -> Iterator[VectorStore]:
    """An open store with the test model's collection created."""
    with target.open(index=IndexSettings(M=16, ef_construction=64)) as opened:
        opened.ensure_collection(MODEL)
        yield opened
