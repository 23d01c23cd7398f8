"""Backbone-free model files: a ``features`` section names the k-mer extractor of the head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from embedder_testkit import SEQUENCES
from rinalmo_search.embedder.features import FeatureHeadEmbedder, KmerFeatures
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.model_file import load_model_file, save_model_file
from rinalmo_search.embedder.registry import load_embedder
from rinalmo_search.embedder.rinalmo import RiNALMoConfig

from rinalmo_search.errors import ConfigError


def head_for(input_dim: int) -> HomologyHead:
    torch.manual_seed(3)
    return HomologyHead(HeadConfig(input_dim=input_dim, hidden_dim=32, output_dim=16,
                                   num_blocks=1, num_heads=4, ffn_dim=64)).eval()


def test_feature_model_file_round_trip_and_embedder(tmp_path: Path) -> None:
    head = head_for(64)
    path = save_model_file(tmp_path / "k3.pt", name="k3-head", version="2", backbone=None,
                           head=head, features={"kind": "kmer", "k": 3})
    loaded = load_model_file(path)
    assert loaded.backbone_config is None
    assert loaded.features == {"kind": "kmer", "k": 3, "name": "kmer3", "dim": 64}
    embedder = load_embedder(str(path), threads=1, batch_size=2)
    assert isinstance(embedder, FeatureHeadEmbedder)
    assert embedder.info.tag == "k3-head@2" and embedder.info.dim == 16
    vectors = embedder.embed(SEQUENCES)
    with torch.no_grad():
        expected = head(torch.from_numpy(KmerFeatures(k=3).extract(SEQUENCES))).numpy()
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="does not take the option.*checkpoint"):
        load_embedder(str(path), checkpoint="giga")


def test_feature_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of 'backbone'"):
        save_model_file(tmp_path / "a.pt", name="a", version="1", backbone=None, head=None)
    with pytest.raises(ValueError, match="exactly one of 'backbone'"):
        save_model_file(tmp_path / "b.pt", name="b", version="1",
                        backbone=RiNALMoConfig.preset("nano"), backbone_source="nano",
                        head=None, features={"kind": "kmer", "k": 3})
    with pytest.raises(ValueError, match="head expects 64-d input, but the kmer4 features are "
                                         "256-d"):
        save_model_file(tmp_path / "c.pt", name="c", version="1", backbone=None,
                        head=head_for(64), features={"kind": "kmer", "k": 4})
    with pytest.raises(ValueError, match="Unknown feature extractor kind 'bpe'"):
        save_model_file(tmp_path / "d.pt", name="d", version="1", backbone=None,
                        head=None, features={"kind": "bpe"})
    assert not (tmp_path / "c.pt").exists()
