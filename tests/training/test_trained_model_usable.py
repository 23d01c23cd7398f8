"""A head trained by ``rinalmo-search train`` on k-mer features is a usable search model.

Real train → index → search: the trainer's ``model.pt`` (backbone-free, a ``features`` section
naming the k-mer extractor) goes to ``--model`` of ``index`` and ``search`` on a Milvus Lite
file, and the vectors stored in Milvus equal the trained head applied to the trainer's own
cached features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rinalmo_search.embedder.features import FeatureHeadEmbedder
from rinalmo_search.embedder.local import TorchEmbedder
from rinalmo_search.embedder.model_file import load_model_file
from rinalmo_search.embedder.registry import load_embedder
from rinalmo_search.milvus import VectorStore
from rinalmo_search.milvus import schema as S
from rinalmo_search.training.features import FeatureCache, build_extractor
from rinalmo_search.training.prepare import load_split

from rinalmo_search.cli import main
from rinalmo_search.errors import InferenceError
from rinalmo_search.hits import read_hits_tsv

NAME, VERSION = "kmer4-head-test", "t7"


@pytest.fixture(scope="module")
def trained(tiny_split: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rinalmo-search train`` of a small head on 4-mer features of the tiny split."""
    folder = tmp_path_factory.mktemp("usable")
    config = {
        "name": NAME, "version": VERSION,
        # both folders come from the command line (--split-dir, --output-dir) instead
        "split_dir": str(folder / "no-such-split"), "output_dir": str(folder / "elsewhere"),
        "features": {"extractor": "kmer", "options": {"k": 4},
                     "cache_dir": str(folder / "cache")},
        "head": {"hidden_dim": 64, "output_dim": 32, "num_blocks": 1, "num_heads": 4,
                 "ffn_dim": 128, "dropout": 0.1},
        "sampler": {"families_per_batch": 6, "per_family": 4, "hard_negatives": 2},
        "optim": {"lr": 1e-3},
        "epochs": 4, "num_threads": 1, "progress": False,
    }
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path), "--split-dir", str(tiny_split),
                 "--output-dir", str(folder / "run")]) == 0
    assert not (folder / "elsewhere").exists()
    model = folder / "run" / "model.pt"
    assert model.is_file(), "the validation loss never improved, so no model.pt was written"
    return model


def test_trained_kmer_head_indexes_and_searches(trained: Path, tiny_split: Path,
                                                 tmp_path: Path) -> None:
    model_file = load_model_file(trained)
    assert model_file.backbone_config is None and model_file.backbone_state is None
    assert model_file.features == {"kind": "kmer", "k": 4, "name": "kmer4", "dim": 256}
    assert model_file.head_config is not None and model_file.head_config.input_dim == 256

    split = load_split(tiny_split)
    records = split.records["validation"] + split.records["test"]
    fasta = tmp_path / "library.fasta"
    with fasta.open("w") as handle:
        for record in records:
            clan = split.families[record.family].clan or "NA"
            handle.write(f">{record.id} {record.family} {clan}\n{record.sequence}\n")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(fasta), "--db", db, "--model", str(trained), "-q"]) == 0

    queries = [records[0], records[len(records) // 2], records[-1]]
    query_fasta = tmp_path / "q.fasta"
    query_fasta.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in queries))
    hits_tsv = tmp_path / "hits.tsv"
    assert main(["search", str(query_fasta), "--db", db, "--model", str(trained),
                 "--top-k", "5", "--out", str(hits_tsv), "-q"]) == 0
    rows = read_hits_tsv(hits_tsv)
    assert len(rows) == 3 * 5
    for query in queries:
        mine = [row for row in rows if row["query_id"] == query.id]
        assert [int(row["rank"]) for row in mine] == [1, 2, 3, 4, 5]
        # the query is in the library: it finds itself (or an identical sequence) first
        top = next(r for r in records if r.id == mine[0]["target_id"])
        assert top.sequence == query.sequence
        assert float(mine[0]["score"]) == pytest.approx(1.0, abs=1e-4)

    # the collection and every row carry the trained model's name and version
    with VectorStore(db) as store:
        tag, dim = store.stored_model()
        assert (tag, dim) == (f"{NAME}@{VERSION}", 32)
        assert store.count() == len(records)  # also loads the collection for the get below
        stored = store.client.get(store.physical_name() or store.alias,
                                  ids=[r.id for r in records],
                                  output_fields=[S.VECTOR, S.MODEL])
    assert len(stored) == len(records)
    assert {row[S.MODEL] for row in stored} == {f"{NAME}@{VERSION}"}
    by_id = {row[S.ID]: np.asarray(row[S.VECTOR], dtype=np.float32) for row in stored}
    milvus_vectors = np.stack([by_id[r.id] for r in records])

    # the trainer's own feature path: its cache of the k-mer extractor, then the trained head
    cache = FeatureCache(tmp_path / "cache", build_extractor("kmer", k=4),
                         f"split-{split.fingerprint[:16]}")
    features = cache.get([r.sequence for r in records], progress=False)
    head = model_file.build_head()
    assert head is not None
    with torch.no_grad():
        expected = head(torch.from_numpy(features)).numpy()
    embedder = load_embedder(str(trained))
    assert isinstance(embedder, FeatureHeadEmbedder)
    assert (embedder.info.name, embedder.info.version, embedder.info.dim) == (NAME, VERSION, 32)
    np.testing.assert_allclose(embedder.embed([r.sequence for r in records]), expected,
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(milvus_vectors, expected, rtol=0, atol=1e-5)
    assert np.abs(milvus_vectors - expected).max() <= 1e-5

    # another model may not search this collection (the model tag is checked)
    assert main(["search", str(query_fasta), "--db", db, "--model", "kmer",
                 "--out", str(tmp_path / "other.tsv"), "-q"]) == 1


def test_backbone_free_file_is_no_rinalmo_embedder(trained: Path) -> None:
    with pytest.raises(InferenceError, match="has no RiNALMo backbone .*kmer4"):
        TorchEmbedder.from_model_file(trained)
