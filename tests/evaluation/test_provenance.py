"""Model provenance checks and the feature-cache path of `evaluate` (real RiNALMo-micro, random)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import TorchEmbedder
from rinalmo_search.embedder.model_file import save_model_file
from rinalmo_search.training.features import RinalmoFeatures

from rinalmo_search.errors import ConfigError, InferenceError
from rinalmo_search.evaluation.provenance import (
    cached_head_embedder,
    split_warnings,
    training_split,
)
from rinalmo_search.evaluation.split import RetrievalSet
from rinalmo_search.seqio import SequenceRecord

SEQUENCES = ["GGCUAGCUAGGCUAAGCUUAGC", "AUGGCUAAGGCUUAGGAUCCGAUAGCUA", "CCGGAUAUCCGG",
             "GGCUAGCUAGGCUAAGCUUAGC"]  # one repeated: cached once


def _split(fingerprint: str = "f" * 64) -> RetrievalSet:
    records = [SequenceRecord(id=f"s{i}", sequence=s, family=f"RF0000{i % 2 + 1}")
               for i, s in enumerate(SEQUENCES[:3])]
    return RetrievalSet(records, {"RF00001": "train", "RF00002": "test"}, fingerprint=fingerprint)


def _head_model(tmp_path: Path, *, seed: int = 0) -> Path:
    """A trainer-style model file: random micro backbone (stored) + a small random head."""
    extractor = RinalmoFeatures(preset="micro", seed=0, threads=1)
    torch.manual_seed(1)
    head = HomologyHead(HeadConfig(input_dim=extractor.dim, hidden_dim=32, output_dim=16,
                                   num_blocks=1, num_heads=2, ffn_dim=64, dropout=0.0)).eval()
    description = {**extractor.describe(), "seed": seed}
    return save_model_file(
        tmp_path / "head.pt", name="micro-head", version="1", backbone=extractor.backbone,
        head=head, metadata={"features": description,
                             "split": {"fingerprint": "f" * 64,
                                       "families": {"train": ["RF00001"]}}},
    )


def test_cached_head_embedder_equals_the_model_and_reads_the_cache(tmp_path: Path) -> None:
    path = _head_model(tmp_path)
    embedder = cached_head_embedder(str(path), tmp_path / "cache", _split())
    assert embedder is not None
    direct = TorchEmbedder.from_model_file(path, progress=False).embed(SEQUENCES)
    via_cache = embedder.embed(SEQUENCES)
    assert np.abs(direct - via_cache).max() < 1e-5
    cache = embedder.extractor.cache  # type: ignore[attr-defined]
    assert len(cache) == 3
    # the embedder really reads the cache: overwrite one row and its embedding follows
    row = cache.rows[next(iter(cache.rows))]
    features = np.memmap(cache.data_path, dtype=np.float32, mode="r+",
                         shape=(len(cache), cache.dim))
    features[row] = 1.0
    features.flush()
    changed = embedder.embed(SEQUENCES)
    assert np.abs(changed - via_cache).max() > 1e-3
    assert len(cache) == 3


def test_cached_head_embedder_rejects_a_mismatched_extractor(tmp_path: Path) -> None:
    path = _head_model(tmp_path, seed=1)  # says seed 1, stores seed-0 weights
    with pytest.raises(InferenceError, match="does not reproduce"):
        cached_head_embedder(str(path), tmp_path / "cache", _split())


def test_cached_head_embedder_needs_a_prepared_split_and_skips_other_models(
    tmp_path: Path,
) -> None:
    path = _head_model(tmp_path)
    with pytest.raises(ConfigError, match="data prepare"):
        cached_head_embedder(str(path), tmp_path / "cache", _split(fingerprint=""))
    assert cached_head_embedder("compact-kmer", tmp_path / "cache", _split()) is None
    assert cached_head_embedder("kmer", tmp_path / "cache", _split()) is None


def test_split_warnings_name_leaked_families_and_foreign_splits(tmp_path: Path) -> None:
    path = str(_head_model(tmp_path))
    assert split_warnings(path, _split()) == []  # trained on RF00001, tests RF00002
    leaky = _split()
    leaky.family_split["RF00001"] = "test"
    (warning,) = split_warnings(path, leaky)
    assert "1 of this split's 2 test families" in warning and "RF00001" in warning
    # the shipped model records only its split's fingerprint prefix
    fingerprint, families = training_split({"split": "/tmp/prep (ad350203bb31)"})
    assert (fingerprint, families) == ("ad350203bb31", None)
    assert split_warnings("compact-kmer", _split("ad350203bb31" + "0" * 52)) == []
    (foreign,) = split_warnings("compact-kmer", _split())
    assert "ad350203bb31" in foreign and "ffffffffffff" in foreign
