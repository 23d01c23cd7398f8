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

    File modes do not stop root, so as root the folder becomes a read-only bind mount (what
    a read-only network share looks like), or immutable (``chattr +i``) where mounting is not
    allowed; otherwise folders become 0555 and files 0444. All of it recursively, so a copied
    database inside cannot be written either. Skips only when none of these is possible.
    """
    undo: list[list[str]] = []
    modes: list[Path] = []

    def make(*sources: Path) -> Path:
        folder = tmp_path / f"read-only-{len(undo) + len(modes)}"
        folder.mkdir()
        for source in sources:
            if source.is_dir():
                shutil.copytree(source, folder / source.name)
            else:
                shutil.copy2(source, folder / source.name)
        if os.geteuid() != 0:
            _chmod_tree(folder, writable=False)
            modes.append(folder)
            return folder
        if _run(["mount", "--bind", str(folder), str(folder)]):
            undo.append(["umount", str(folder)])
            if _run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)]):
                return folder
        if _run(["chattr", "-R", "+i", str(folder)]):
            undo.append(["chattr", "-R", "-i", str(folder)])
            return folder
        pytest.skip("running as root where neither 'mount' nor 'chattr' may make a folder "
                    "read-only")

    yield make
    for command in reversed(undo):
        _run(command)
    for folder in modes:
        _chmod_tree(folder, writable=True)


def _chmod_tree(folder: Path, *, writable: bool) -> None:
    """Folders 0555 and files 0444 (or back to 0755 / 0644), all the way down."""
    paths = [folder, *folder.rglob("*")]
    for path in paths if writable else reversed(paths):
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


def _run(command: list[str]) -> bool:
    if shutil.which(command[0]) is None:
        return False
    return subprocess.run(command, capture_output=True, check=False).returncode == 0
