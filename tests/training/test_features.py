"""Feature extractors and the memory-mapped feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.training.features import (
    FeatureCache,
    KmerFeatures,
    RinalmoFeatures,
    build_extractor,
)

from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.seqio import sequence_hash

SEQUENCES = ["ACGUACGUAGCUAGCUAGCAUCGAUCGA", "GGGCCCAUAGCUCAGUGGUAGAGUG", "UUUUAAAACCCCGGGG" * 2]


def test_kmer_features_are_unit_sqrt_spectra() -> None:
    extractor = KmerFeatures(k=2)
    features = extractor.extract(["AACC"])
    # 2-mers of AACC: AA, AC, CC once each → three equal entries of 1/sqrt(3)
    expected = np.zeros(16, dtype=np.float32)
    expected[[0, 1, 5]] = 1 / np.sqrt(3)
    assert features.shape == (1, 16)
    np.testing.assert_allclose(features[0], expected, rtol=1e-6)


def test_cache_stores_once_and_survives_an_interrupted_write(tmp_path: Path) -> None:
    extractor = KmerFeatures(k=3)
    cache = FeatureCache(tmp_path, extractor, "unit")
    assert cache.fill([*SEQUENCES, SEQUENCES[0].lower()], progress=False) == 3  # one duplicate
    reference = extractor.extract(SEQUENCES)
    np.testing.assert_array_equal(cache.get(SEQUENCES[::-1], progress=False), reference[::-1])
    index_lines = (cache.index_path).read_text().splitlines()
    assert index_lines[0].split("\t")[0] == sequence_hash(SEQUENCES[0])
    # a killed run leaves rows beyond the index: they are dropped on reopening
    with cache.data_path.open("ab") as handle:
        handle.write(b"\x00" * 100)
    reopened = FeatureCache(tmp_path, extractor, "unit")
    assert len(reopened) == 3
    assert reopened.fill(SEQUENCES, progress=False) == 0
    assert isinstance(reopened.array(), np.memmap)
    np.testing.assert_array_equal(reopened.get(SEQUENCES, progress=False), reference)
    assert reopened.data_path.stat().st_size == 3 * extractor.dim * 4
    class Narrower(KmerFeatures):
        dim = 16  # same name as the cached extractor, another width

    with pytest.raises(InputError, match=r"cache of kmer3 \(dim 64\), expected kmer3 \(dim 16\)"):
        FeatureCache(tmp_path, Narrower(k=3), "unit")


def test_rinalmo_features_are_seeded_pooled_backbone_outputs() -> None:
    a = RinalmoFeatures(preset="nano", seed=1, threads=1)
    b = RinalmoFeatures(preset="nano", seed=1, threads=1)
    c = RinalmoFeatures(preset="nano", seed=2, threads=1)
    features = a.extract(SEQUENCES)
    assert features.shape == (3, 320) and features.dtype == np.float32
    np.testing.assert_allclose(b.extract(SEQUENCES), features, rtol=1e-5, atol=1e-6)
    assert not np.allclose(c.extract(SEQUENCES), features)
    assert a.name == "rinalmo-nano-random1"
    assert a.describe()["kind"] == "rinalmo"


def test_unknown_extractor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Unknown feature extractor 'esm'"):
        build_extractor("esm")
    with pytest.raises(ConfigError, match="Invalid options for the kmer feature extractor"):
        build_extractor("kmer", width=3)
