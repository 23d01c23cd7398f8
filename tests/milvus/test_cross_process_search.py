"""`index` in one process, then `search` in another, on a real Milvus server: searches use
Bounded consistency (no wait for a time tick) and still find every record that was indexed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rinalmo_search.milvus import VectorStore
from rinalmo_search.milvus.store import DEFAULT_CONSISTENCY

from rinalmo_search.hits import read_hits_tsv

RFAM = Path(__file__).resolve().parents[3] / "shared" / "data" / "rfam" / "sequences.fasta"


def _first_records(path: Path, n: int) -> str:
    lines: list[str] = []
    with path.open() as handle:
        for line in handle:
            if line.startswith(">") and sum(x.startswith(">") for x in lines) == n:
                break
            lines.append(line)
    return "".join(lines)


def _cli(*args: str, cwd: Path) -> None:
    program = Path(sys.executable).with_name("rinalmo-search")
    done = subprocess.run([str(program), "-q", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_search_in_a_new_process_finds_every_record_just_indexed(
    milvus_server: str, tmp_path: Path
) -> None:
    fasta = tmp_path / "library.fa"
    fasta.write_text(_first_records(RFAM, 300))
    collection = "cross_process"
    _cli("index", str(fasta), "--db", milvus_server, "--collection", collection, cwd=tmp_path)
    _cli("search", str(fasta), "--db", milvus_server, "--collection", collection,
         "--out", "hits.tsv", "--top-k", "5", "--rerank", "none", cwd=tmp_path)
    ids = [line[1:].split()[0] for line in fasta.read_text().splitlines() if line.startswith(">")]
    found: dict[str, set[str]] = {}
    for row in read_hits_tsv(tmp_path / "hits.tsv"):
        found.setdefault(row["query_id"], set()).add(row["target_id"])
    assert len(set(ids)) == 300
    missing = [i for i in ids if i not in found.get(i, set())]
    assert missing == []  # each record is among its own top-5
    with VectorStore(milvus_server, collection=collection) as store:
        assert store.consistency == DEFAULT_CONSISTENCY == "Bounded"
        assert store.count() == 300
