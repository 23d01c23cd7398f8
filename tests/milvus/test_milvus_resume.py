"""An indexing run killed midway can be rerun: no duplicates, no losses (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from milvus_testdata import Target
from rinalmo_search.embedder import load_embedder
from rinalmo_search.milvus import VectorStore

from rinalmo_search.seqio import iter_fasta

HERE = Path(__file__).resolve().parent
RFAM = HERE.parent.parent.parent / "shared" / "data" / "rfam" / "sequences.fasta"
N_RECORDS = 1200
BATCH = 100


def _worker(target: Target) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "index_worker.py"), target.uri, target.collection,
         str(RFAM), str(N_RECORDS), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.skipif(not RFAM.is_file(), reason=f"Rfam sequences not found at {RFAM}")
def test_killed_index_run_is_completed_by_rerun(target: Target) -> None:
    unique_ids = set()
    for record in iter_fasta(RFAM):
        unique_ids.add(record.id)
        if len(unique_ids) == N_RECORDS:
            break
    first = _worker(target)
    assert first.stdout is not None
    lines = []
    for line in first.stdout:
        lines.append(line.strip())
        if line.startswith("BATCH 3"):
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    assert first.returncode == -signal.SIGKILL, lines
    assert lines[0] == f"TODO {N_RECORDS}"

    second = _worker(target)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    todo = int(out.split()[1])
    # The rerun only embeds what the killed run had not stored (at least 3 batches were).
    assert 0 < todo <= N_RECORDS - 3 * BATCH
    assert out.strip().splitlines()[-1] == f"DONE {N_RECORDS}"

    with target.open() as store:
        store.check_model(load_embedder("kmer").info)
        assert store.count() == len(unique_ids) == N_RECORDS
        assert {row["id"] for row in store.get(sorted(unique_ids))} == unique_ids
    third = _worker(target)
    out, _ = third.communicate(timeout=300)
    assert out.splitlines()[0] == "TODO 0"


def test_second_process_on_lite_file_gets_clear_error(lite_uri: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom rinalmo_search.milvus import VectorStore\n"
         f"store = VectorStore({lite_uri!r})\nprint('open', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "open"
        from rinalmo_search.errors import StoreError

        with pytest.raises(StoreError, match=r"Cannot open Milvus Lite file .*another process"):
            VectorStore(lite_uri)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with VectorStore(lite_uri) as store:
        assert not store.exists()
