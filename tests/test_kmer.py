"""The k-mer baseline embedder."""

from __future__ import annotations

import numpy as np
from rinalmo_search.embedder import load_embedder
from rinalmo_search.embedder.kmer import KmerEmbedder

from rinalmo_search.simulate import simulated_families


def test_vectors_are_unit_float32_in_input_order() -> None:
    embedder = load_embedder("kmer")
    sequences = ["ACGUACGUAGGCUAGCUAGC", "GGGGCCCCAAAAUUUU", "ACGUACGUAGGCUAGCUAGC"]
    vectors = embedder.embed(sequences)
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embedder.embed([]).shape == (0, 512)


def test_spectrum_counts_kmers_and_skips_ambiguous() -> None:
    embedder = KmerEmbedder(k=2)
    counts = embedder.spectrum("ACGNAC")  # AC, CG, AC (GN and NA skipped)
    assert counts.sum() == 3
    assert counts[0 * 4 + 1] == 2  # AC
    assert counts[1 * 4 + 2] == 1  # CG
    np.testing.assert_array_equal(embedder.spectrum("ACGU"), embedder.spectrum("acgt"))


def test_same_family_is_closer_than_other_families() -> None:
    records = simulated_families(5, 6, length=150, rate=0.1, seed=3)
    vectors = load_embedder("kmer").embed([r.sequence for r in records])
    similarity = vectors @ vectors.T
    family = np.array([r.family for r in records])
    same = family[:, None] == family[None, :]
    np.fill_diagonal(same, False)
    other = family[:, None] != family[None, :]
    assert similarity[same].mean() > similarity[other].mean() + 0.2
