"""The CLI with ``--embedder triton``: index and search a Milvus Lite collection through Triton."""

from __future__ import annotations

from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from triton_testkit import MODEL_NAME, random_sequences

from rinalmo_search.cli import main
from rinalmo_search.hits import read_hits_tsv
from rinalmo_search.seqio import SequenceRecord, write_fasta


def test_index_and_search_through_triton(triton_url: str, tmp_path: Path) -> None:
    library = [
        SequenceRecord(id=f"s{i}", sequence=seq)
        for i, seq in enumerate(random_sequences(6, 30, 60, seed=21))
    ]
    write_fasta(library, tmp_path / "library.fasta")
    write_fasta(library[2:3], tmp_path / "query.fasta")
    served_before = _served(triton_url)
    common = ["--db", str(tmp_path / "rna.db"), "--embedder", "triton", "--triton-url", triton_url]
    assert main(["-q", "index", str(tmp_path / "library.fasta"), *common]) == 0
    hits_path = tmp_path / "hits.tsv"
    arguments = ["search", str(tmp_path / "query.fasta"), "--out", str(hits_path), "--rerank",
                 "none", "--top-k", "3", *common]  # fmt: skip
    assert main(["-q", *arguments]) == 0
    rows = read_hits_tsv(hits_path)
    assert [row["query_id"] for row in rows] == ["s2"] * 3
    assert rows[0]["target_id"] == "s2"  # a sequence is its own nearest neighbour
    assert float(rows[0]["score"]) == pytest.approx(1.0, abs=1e-4)
    assert float(rows[1]["score"]) < float(rows[0]["score"])
    # the vectors came from the server: 6 library sequences and 1 query
    assert _served(triton_url) - served_before >= 7


def _served(url: str) -> int:
    client = grpcclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"][0]
    finally:
        client.close()
    return int(stats.get("inference_count", 0))
