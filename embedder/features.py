"""Backbone-free sequence features, and the embedder that puts a trained head on them.

A homology head can be trained on features that need no language model (see
:mod:`rinalmo_search.training.features`). This module owns those extractors so that training
and inference compute them with the *same* code: :class:`KmerFeatures` (square-rooted,
L2-normalised k-mer spectra). A model file records an extractor as plain data
(:meth:`FeatureExtractor.describe`); :func:`extractor_from_description` rebuilds it, and
:class:`FeatureHeadEmbedder` runs extractor → head → unit vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rinalmo_search.errors import InferenceError

from .base import Embedder, ModelInfo, l2_normalise
from .kmer import KmerEmbedder

if TYPE_CHECKING:
    from .head import HomologyHead


class FeatureExtractor(ABC):
    """Turns sequences into fixed-size pooled feature vectors (the head's input)."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Identifies the extractor *and* its weights/parameters (the cache folder name)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature width."""

    @abstractmethod
    def extract(self, sequences: Sequence[str]) -> np.ndarray:
        """Features ``(len(sequences), dim)`` float32, in input order."""

    def describe(self) -> dict[str, Any]:
        """Plain-data description recorded in the cache and in model files."""
        return {"name": self.name, "dim": self.dim}


class KmerFeatures(FeatureExtractor):
    """k-mer composition: ``sqrt(counts)``, L2-normalised, ``4**k`` wide.

    Arguments:
        k: k-mer length (1..8).
    """

    def __init__(self, k: int = 4) -> None:
        self.k = k
        self._kmer = KmerEmbedder(k=k, dim=1)  # only its spectrum is used

    @property
    def name(self) -> str:
        return f"kmer{self.k}"

    @property
    def dim(self) -> int:
        return 4**self.k

    def extract(self, sequences: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            out[row] = np.sqrt(self._kmer.spectrum(sequence))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, np.float32(1e-12))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "kind": "kmer", "k": self.k}


#: Extractor kinds a model file may name in its ``features`` section → class.
FEATURE_KINDS: dict[str, type[FeatureExtractor]] = {"kmer": KmerFeatures}


def extractor_from_description(description: dict[str, Any]) -> FeatureExtractor:
    """Rebuild an extractor from its :meth:`FeatureExtractor.describe` output.

    Arguments:
        description: ``{"kind": "kmer", "k": 4, "name": "kmer4", "dim": 256}`` (``name`` and
            ``dim`` are checked against the rebuilt extractor when present).

    Raises:
        InferenceError: unknown kind, bad parameters, or a name/width that the rebuilt
            extractor does not reproduce.
    """
    kind = description.get("kind")
    if kind not in FEATURE_KINDS:
        known = ", ".join(sorted(FEATURE_KINDS))
        raise InferenceError(
            f"Unknown feature extractor kind {kind!r} in the model file (expected one of: "
            f"{known})"
        )
    if kind == "kmer":
        k = description.get("k")
        if not isinstance(k, int) or not 1 <= k <= 8:
            raise InferenceError(f"Invalid k-mer length 'k' in the model file: {k!r} "
                                 "(expected an integer 1..8)")
        extractor: FeatureExtractor = KmerFeatures(k=k)
    for key in ("name", "dim"):
        if key in description and description[key] != getattr(extractor, key):
            raise InferenceError(
                f"Feature extractor {key} {description[key]!r} in the model file does not "
                f"match the rebuilt {kind} extractor's {getattr(extractor, key)!r}"
            )
    return extractor


class FeatureHeadEmbedder(Embedder):
    """Backbone-free features → homology head → unit vectors.

    Without a head, :meth:`embed` returns the L2-normalised features.

    Arguments:
        extractor: the feature extractor the head was trained on.
        head: the trained head (float32, eval mode), or None.
        name: model name for :attr:`info`.
        version: model version for :attr:`info`.
        threads: ``torch.set_num_threads`` value (process-wide); None leaves it.
        batch_size: most sequences per head forward pass.
        device: torch device of the head.

    Raises:
        InferenceError: the head's input width differs from the features' width.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        head: HomologyHead | None = None,
        *,
        name: str | None = None,
        version: str = "1",
        threads: int | None = None,
        batch_size: int = 1024,
        device: str = "cpu",
    ) -> None:
        import torch

        if threads is not None:
            if threads < 1:
                raise ValueError(f"Invalid 'threads' value: {threads} (expected >= 1)")
            torch.set_num_threads(threads)
        if batch_size < 1:
            raise ValueError(f"Invalid 'batch_size' value: {batch_size} (expected >= 1)")
        if head is not None and head.config.input_dim != extractor.dim:
            raise InferenceError(
                f"The head expects {head.config.input_dim}-d input, but the {extractor.name} "
                f"features are {extractor.dim}-d"
            )
        self.extractor = extractor
        self.device = torch.device(device)
        self.head = None if head is None else head.float().to(self.device).eval()
        self.batch_size = batch_size
        dim = extractor.dim if head is None else head.config.output_dim
        self._info = ModelInfo(name=name or f"{extractor.name}-head", version=version, dim=dim)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def embed_features(self, sequences: Sequence[str]) -> np.ndarray:
        """The extractor's features ``(n, extractor.dim)`` float32, in input order."""
        return np.ascontiguousarray(self.extractor.extract(list(sequences)), dtype=np.float32)

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        """Unit embeddings ``(n, info.dim)`` float32, in input order."""
        import torch

        features = self.embed_features(sequences)
        if self.head is None:
            return l2_normalise(features)
        out = np.zeros((len(features), self._info.dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                for start in range(0, len(features), self.batch_size):
                    batch = torch.from_numpy(features[start : start + self.batch_size])
                    out[start : start + len(batch)] = (
                        self.head(batch.to(self.device)).float().cpu().numpy()
                    )
        except RuntimeError as error:
            raise InferenceError(f"Homology head inference failed: {error}") from error
        return out
