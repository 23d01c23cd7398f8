"""TorchEmbedder: pooling over residues, length-bucketed batches equal one-by-one, head output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from embedder_testkit import SEQUENCES, random_model
from rinalmo_reference import reference_pooled
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import TorchEmbedder
from rinalmo_search.embedder.pooling import mean_pool, residue_mask

MANY = SEQUENCES + ["ACGU" * 10, "GGGCCC"]


def test_residue_mask_excludes_specials_and_padding() -> None:
    ids, mask = batch_encode(["AC", "GGGG"])
    got = residue_mask(torch.from_numpy(ids), torch.from_numpy(mask))
    assert got.tolist() == [[False, True, True, False, False, False],
                            [False, True, True, True, True, False]]


def test_mean_pool_in_float32() -> None:
    hidden = torch.arange(12, dtype=torch.bfloat16).view(1, 4, 3)
    pooled = mean_pool(hidden, torch.tensor([[False, True, True, False]]))
    assert pooled.dtype == torch.float32
    assert pooled.tolist() == [[4.5, 5.5, 6.5]]


def test_features_match_reference_pooling(micro_checkpoint: Path) -> None:
    embedder = TorchEmbedder.from_checkpoint(micro_checkpoint, progress=False)
    features = embedder.embed_features(SEQUENCES)
    state = torch.load(micro_checkpoint, weights_only=True)
    ids, _ = batch_encode(SEQUENCES)
    with torch.no_grad():
        ref = reference_pooled(state, torch.from_numpy(ids)).numpy()
    assert features.shape == (len(SEQUENCES), 480) and features.dtype == np.float32
    assert np.abs(features - ref).max() <= 1e-5


def test_batched_equals_one_by_one() -> None:
    head = HomologyHead(HeadConfig(input_dim=480, num_blocks=1)).eval()
    embedder = TorchEmbedder(random_model("micro", 1), head, batch_size=3, progress=False)
    batched = embedder.embed(MANY)
    single = np.concatenate([embedder.embed([seq]) for seq in MANY])
    assert np.abs(batched - single).max() <= 1e-5
    features = embedder.embed_features(MANY)
    features_single = np.concatenate([embedder.embed_features([seq]) for seq in MANY])
    assert np.abs(features - features_single).max() <= 1e-5


def test_embed_gives_unit_rows_in_input_order() -> None:
    head = HomologyHead(HeadConfig(input_dim=320, num_blocks=1)).eval()
    embedder = TorchEmbedder(random_model("nano", 1), head, batch_size=3, name="t", progress=False)
    vectors = embedder.embed(MANY)
    assert vectors.shape == (len(MANY), 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reordered = embedder.embed(MANY[::-1])
    assert np.abs(reordered[::-1] - vectors).max() <= 1e-5
    assert embedder.info.name == "t" and embedder.info.dim == 512
    assert embedder.embed([]).shape == (0, 512)


def test_without_head_embed_is_normalised_features() -> None:
    embedder = TorchEmbedder(random_model("nano", 1), None, progress=False)
    vectors = embedder.embed(SEQUENCES)
    features = embedder.embed_features(SEQUENCES)
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert np.abs(vectors - expected).max() <= 1e-6
    assert embedder.info.dim == 320
