"""Start-up cost of one command: a search with the shipped model imports neither torch nor the
MSA, evaluation or training code (``import torch`` alone is about a second per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rinalmo_search.hits import read_hits_tsv

HEAVY = ("torch", "rinalmo_search.msa", "rinalmo_search.evaluation", "rinalmo_search.training")

PROBE = f"""
import json, sys
from rinalmo_search.cli import main
code = main(sys.argv[1:])
heavy = sorted({{m for m in sys.modules for h in {HEAVY!r} if m == h or m.startswith(h + ".")}})
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def _run(tmp_path: Path, *argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "-q", *argv],
        cwd=tmp_path,  # not the repository root: its milvus/ folder would shadow Milvus
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_index_and_search_with_the_shipped_model_import_no_torch(tmp_path: Path) -> None:
    fasta = tmp_path / "library.fa"
    fasta.write_text(
        ">a\nGGGAAACUUCGGUUUCCCAAGGGAAACUUCGGUUUCCCAA\n"
        ">b\nGCGCAUAUGCGCAUAUGCGCAUAUGCGCAUAUGCGCAUAU\n"
        ">c\nUUAGCUAGCUAGGAUCCAUGCAUGCAUGGAUCCAUGCAUG\n"
    )
    db = str(tmp_path / "rna.db")
    assert _run(tmp_path, "index", str(fasta), "--db", db) == {"code": 0, "heavy": []}
    searched = _run(tmp_path, "search", str(fasta), "--db", db, "--out", "hits.tsv")
    assert searched == {"code": 0, "heavy": []}
    rows = read_hits_tsv(tmp_path / "hits.tsv")
    assert {row["query_id"] for row in rows} == {"a", "b", "c"}


def test_help_of_one_command_imports_only_that_command(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from rinalmo_search.cli import build_parser\n"
        "build_parser(['search'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('rinalmo_search.commands.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    imported = done.stdout.strip()
    assert imported == "['rinalmo_search.commands.common', 'rinalmo_search.commands.search']"
