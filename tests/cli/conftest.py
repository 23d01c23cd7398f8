"""Fixtures of the CLI reliability tests: a small indexed collection and read-only folders."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rinalmo_search.cli import main
from rinalmo_search.seqio import read_fasta, write_fasta
from rinalmo_search.simulate import simulated_families


@pytest.fixture(scope="session")
def library_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Milvus Lite database of six simulated families of eight (built once per session).

    Tests only read it; a test that must change or protect a database copies it first.
    """
    folder = tmp_path_factory.mktemp("library")
    fasta = folder / "families.fasta"
    write_fasta(simulated_families(6, 8, length=100, rate=0.05, seed=7), fasta)
    db = folder / "lib.db"
    assert main(["index", str(fasta), "--db", str(db), "-q"]) == 0
    return db


@pytest.fixture
def query_fasta(tmp_path: Path, library_db: Path) -> Path:
    """Two members of the library as a query file."""
    path = tmp_path / "q.fasta"
    write_fasta(read_fasta(library_db.parent / "families.fasta")[:2], path)
    return path


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``read_only(*sources)``: a new folder holding copies of ``sources``, made unwritable.

    As root (whom file modes do not stop) the folder becomes a read-only bind mount, the
    same as a read-only network share; otherwise its mode becomes 0555.
    """
    made: list[Path] = []

    def make(*sources: Path) -> Path:
        folder = tmp_path / f"read-only-{len(made)}"
        folder.mkdir()
        for source in sources:
            if source.is_dir():
                shutil.copytree(source, folder / source.name)
            else:
                shutil.copy2(source, folder / source.name)
        made.append(folder)
        if os.geteuid() != 0:
            folder.chmod(0o555)
        else:
            subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
            subprocess.run(
                ["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True
            )
        return folder

    yield make
    for folder in made:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["umount", str(folder)], check=False)
