"""The :class:`Embedder` interface every model implementation (local or remote) provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the model that made a vector; stored with every vector in Milvus.

    Attributes:
        name: short model name, e.g. ``"kmer5-rp512"``.
        version: version string of that model's weights or recipe.
        dim: length of the vectors it returns.
    """

    name: str
    version: str
    dim: int

    @property
    def tag(self) -> str:
        """``name@version``, the form stored in the vector store."""
        return f"{self.name}@{self.version}"


class Embedder(ABC):
    """Turns RNA sequences into unit-length float32 vectors.

    Implementations: the k-mer baseline (``kmer``), RiNALMo + homology head in local torch,
    and the same model served by Triton over gRPC. For one model they all return the same
    vectors, so a collection built with one can be searched with another.
    """

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """The model's name, version and output dimension."""

    @abstractmethod
    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        """Embed sequences.

        Arguments:
            sequences: RNA/DNA sequences (any case; T and U are the same residue).

        Returns:
            Array of shape ``(len(sequences), info.dim)``, dtype float32, rows of unit L2 norm,
            in input order.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most embedders hold nothing
        """Release resources (connections, threads). Safe to call twice."""

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit length (all-zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))
