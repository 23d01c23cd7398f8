"""Alignment-free baseline: normalised k-mer spectra, randomly projected to 512 dimensions.

This is not a language model. It is the honest baseline the learned models must beat, and it
keeps every part of the tool usable offline with no weights at all. Cosine similarity of k-mer
count profiles is a classic alignment-free homology signal; a fixed Gaussian projection
(Johnson–Lindenstrauss) keeps those cosines approximately while giving every model the same
512-d vector size in Milvus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Embedder, ModelInfo, l2_normalise

# A, C, G and U/T map to 0..3; every other symbol (IUPAC codes, gaps) breaks k-mers.
NUCLEOTIDE_CODES = np.full(256, 255, dtype=np.uint8)
for _i, _letters in enumerate(("Aa", "Cc", "Gg", "UuTt")):
    for _letter in _letters:
        NUCLEOTIDE_CODES[ord(_letter)] = _i


class KmerEmbedder(Embedder):
    """k-mer count spectrum → square root → unit norm → fixed random projection → unit norm.

    Arguments:
        k: k-mer length (4**k spectrum bins).
        dim: output dimension.
        seed: seed of the projection matrix; part of the model version, since vectors made
            with another seed are not comparable.
    """

    def __init__(self, *, k: int = 5, dim: int = 512, seed: int = 20240605) -> None:
        if not 1 <= k <= 8:
            raise ValueError(f"Invalid 'k' value: {k} (expected 1..8)")
        self.k = k
        rng = np.random.default_rng(seed)
        self._projection = (rng.standard_normal((4**k, dim)) / np.sqrt(dim)).astype(np.float32)
        self._info = ModelInfo(name=f"kmer{k}-rp{dim}", version=f"1-seed{seed}", dim=dim)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def spectrum(self, sequence: str) -> np.ndarray:
        """Raw k-mer counts of one sequence (length ``4**k``), skipping k-mers with non-ACGU."""
        codes = NUCLEOTIDE_CODES[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
        n_kmers = len(codes) - self.k + 1
        if n_kmers <= 0:
            return np.zeros(4**self.k, dtype=np.float32)
        valid = codes != 255
        # windows containing any invalid symbol are dropped
        window_valid = np.lib.stride_tricks.sliding_window_view(valid, self.k).all(axis=1)
        index = np.zeros(n_kmers, dtype=np.int64)
        for offset in range(self.k):
            index = index * 4 + (codes[offset : offset + n_kmers] & 3)
        return np.bincount(index[window_valid], minlength=4**self.k).astype(np.float32)

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        if len(sequences) == 0:
            return np.zeros((0, self._info.dim), dtype=np.float32)
        spectra = np.stack([self.spectrum(seq) for seq in sequences])
        spectra = l2_normalise(np.sqrt(spectra))
        return l2_normalise(spectra @ self._projection)
