"""The compact default model: features, file round trip, and the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.embedder.compact import (
    DEFAULT_WEIGHTS,
    CompactConfig,
    CompactEmbedder,
    features,
    load_compact,
    pattern_spectrum,
    save_compact,
)

from rinalmo_search.errors import ConfigError


def test_spaced_pattern_counts_by_hand() -> None:
    # "101" over ACAGA: windows A_A (0,0), C_G (1,2), A_A (0,0) → bin 0 twice, bin 1*4+2 once
    counts = pattern_spectrum("ACAGA", "101")
    assert counts[0] == 2 and counts[6] == 1 and counts.sum() == 3
    # N breaks windows; a batch gives the same rows as one sequence at a time
    batch = ["ACGUNACGU", "GG", "ACGUACGUACGU"]
    blocks = features(batch, ["11", "1011"])
    for row, sequence in enumerate(batch):
        single = features([sequence], ["11", "1011"])
        for block, one in zip(blocks, single, strict=True):
            np.testing.assert_allclose(block[row], one[0])
    assert blocks[0][1].sum() > 0 and blocks[1][1].sum() == 0  # "GG" is too short for 1011


def test_embed_is_unit_and_mix_weights_cosines(tmp_path: Path) -> None:
    config = CompactConfig(patterns=["111", "11011"], block_weights=[1.0, 1.0], dim=64,
                           learned_dim=16, learned_weight=0.3)
    n_features = 64 + 256
    learned = np.random.default_rng(0).standard_normal((n_features, 16)).astype(np.float32)
    model = CompactEmbedder(config, learned, name="t", version="1")
    seqs = ["ACGUACGGAUCCAUGA", "GGGAAACCCUUUAGC", "ACGUACGGAUCCAUGG"]
    vectors = model.embed(seqs)
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # cosine = (1 - w) * cos_fixed + w * cos_learned
    x = model.feature_matrix(seqs)
    fixed = x @ model._projection
    fixed /= np.linalg.norm(fixed, axis=1, keepdims=True)
    mine = x @ learned
    mine /= np.linalg.norm(mine, axis=1, keepdims=True)
    expected = 0.7 * fixed[0] @ fixed[2] + 0.3 * mine[0] @ mine[2]
    assert vectors[0] @ vectors[2] == pytest.approx(expected, rel=1e-4)
    save_compact(tmp_path / "m.pt", config, learned, name="t", version="1")
    again = load_compact(tmp_path / "m.pt").embed(seqs)
    np.testing.assert_allclose(again, vectors, atol=2e-3)  # weights stored as float16


def test_bad_configs_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Invalid k-mer pattern: '0110'"):
        CompactEmbedder(CompactConfig(patterns=["0110"], block_weights=[1.0]))
    with pytest.raises(ConfigError, match="Invalid learned projection shape: None"):
        CompactEmbedder(CompactConfig(patterns=["11"], block_weights=[1.0], learned_dim=8))
    import torch

    torch.save({"format": "other"}, str(tmp_path / "x.pt"))
    with pytest.raises(ConfigError, match="not a compact model file"):
        load_compact(tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="not found"):
        load_compact(tmp_path / "missing.pt")


def test_shipped_model_loads_offline() -> None:
    # the shipped weights are part of the package: a missing file is a failure, not a skip
    # (embedding speed is measured by bench/compact_speed.py, not asserted here)
    assert DEFAULT_WEIGHTS.is_file(), f"shipped weights missing: {DEFAULT_WEIGHTS}"
    model = load_compact()
    assert model.info.dim == 512
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGU"), size=100)) for _ in range(200)]
    vectors = model.embed(seqs)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000
    assert DEFAULT_WEIGHTS.with_suffix(".md").exists()  # the model card ships with it
