"""Pooled sequence features for head training, and their on-disk cache.

The backbone is frozen while the head trains, so its pooled features are computed once per
(extractor, dataset) and stored: ``ROOT/EXTRACTOR/DATASET/`` holds ``features.f32`` (raw
float32 rows, read as a ``numpy.memmap``), ``index.tsv`` (sequence hash → row) and
``meta.json``. Rows are appended and the index written after them, so a killed run leaves a
cache that the next run extends rather than recomputes. Keys are
:func:`rinalmo_search.seqio.sequence_hash`, so the same cache serves indexing too.

Extractors: :class:`RinalmoFeatures` (mean-pooled RiNALMo residue representations, through the
embedder package's :class:`~rinalmo_search.embedder.local.TorchEmbedder`) and
:class:`~rinalmo_search.embedder.features.KmerFeatures` (square-rooted, L2-normalised k-mer
spectra). The backbone-free extractors and the :class:`FeatureExtractor` interface live in
:mod:`rinalmo_search.embedder.features`, so a trained head's model file is embedded at search
time by exactly the code that made its training features.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rinalmo_search.embedder.features import FeatureExtractor, KmerFeatures
from tqdm import tqdm

from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.seqio import atomic_write, sequence_hash

log = logging.getLogger(__name__)


class RinalmoFeatures(FeatureExtractor):
    """Mean-pooled residue representations of a frozen RiNALMo backbone.

    Arguments:
        checkpoint: official checkpoint path or published name (``giga``, ``mega``, ``micro``);
            None builds ``preset`` with random weights from ``seed`` (for tests and CPU dry runs).
        preset: backbone shape when no checkpoint is given.
        seed: seed of the random weights.
        batch_size: sequences per forward pass.
        max_tokens: most padded tokens per forward pass.
        device: torch device.
        threads: torch threads (None leaves the process setting).
    """

    def __init__(
        self,
        *,
        checkpoint: str | None = None,
        preset: str = "micro",
        seed: int = 0,
        batch_size: int = 16,
        max_tokens: int = 8192,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        import torch
        from rinalmo_search.embedder.local import TorchEmbedder
        from rinalmo_search.embedder.pretrained import load_backbone
        from rinalmo_search.embedder.rinalmo import build_model

        if checkpoint:
            backbone = load_backbone(checkpoint)
            tag = Path(checkpoint).stem if Path(checkpoint).exists() else str(checkpoint)
            self._name = f"rinalmo-{backbone.config.name}-{tag}"
        else:
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            backbone = build_model(preset)
            torch.random.set_rng_state(generator_state)
            self._name = f"rinalmo-{preset}-random{seed}"
        self.checkpoint = checkpoint
        self.seed = seed
        self.backbone = backbone.eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self._embedder = TorchEmbedder(
            self.backbone, None, threads=threads, batch_size=batch_size, max_tokens=max_tokens,
            device=device, progress=False,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return int(self.backbone.config.embed_dim)

    def extract(self, sequences: Sequence[str]) -> np.ndarray:
        return self._embedder.embed_features(list(sequences))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "dim": self.dim, "kind": "rinalmo",
            "checkpoint": self.checkpoint, "preset": self.backbone.config.name,
            "seed": None if self.checkpoint else self.seed,
        }


def build_extractor(kind: str, **options: Any) -> FeatureExtractor:
    """Build a feature extractor by kind (``"kmer"`` or ``"rinalmo"``).

    Raises:
        ConfigError: unknown kind or options.
    """
    factories = {"kmer": KmerFeatures, "rinalmo": RinalmoFeatures}
    if kind not in factories:
        raise ConfigError(f"Unknown feature extractor {kind!r} (expected kmer or rinalmo)")
    try:
        return factories[kind](**options)  # type: ignore[abstract]
    except TypeError as error:
        raise ConfigError(f"Invalid options for the {kind} feature extractor: {error}") from None


def split_dataset(fingerprint: str) -> str:
    """The cache's dataset name for a prepared split (shared by training and evaluation)."""
    return f"split-{fingerprint[:16]}"


class FeatureCache:
    """Memory-mapped pooled features of one extractor for one dataset, keyed by sequence hash.

    Arguments:
        root: cache root folder.
        extractor: the feature extractor (its ``name`` is a path component).
        dataset: dataset name (another path component, e.g. the split fingerprint).
    """

    def __init__(self, root: str | Path, extractor: FeatureExtractor, dataset: str) -> None:
        self.extractor = extractor
        self.folder = Path(root) / _safe(extractor.name) / _safe(dataset)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data_path = self.folder / "features.f32"
        self.index_path = self.folder / "index.tsv"
        self.dim = extractor.dim
        meta_path = self.folder / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("dim") != self.dim or meta.get("name") != extractor.name:
                raise InputError(
                    f"{meta_path}: cache of {meta.get('name')} (dim {meta.get('dim')}), expected "
                    f"{extractor.name} (dim {self.dim}); remove the folder to rebuild it"
                )
        else:
            with atomic_write(meta_path) as handle:
                json.dump(extractor.describe(), handle, indent=1)
        self.rows: dict[str, int] = {}
        if self.index_path.exists():
            for line in self.index_path.read_text().splitlines():
                key, _, row = line.partition("\t")
                if row:
                    self.rows[key] = int(row)
        # rows written after the last index line belong to an interrupted run: drop them
        size = len(self.rows) * self.dim * 4
        if self.data_path.exists() and self.data_path.stat().st_size != size:
            with self.data_path.open("r+b") as handle:
                handle.truncate(size)

    def __len__(self) -> int:
        return len(self.rows)

    def array(self) -> np.ndarray:
        """All cached rows as a read-only memmap ``(len(self), dim)``."""
        if not self.rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.memmap(self.data_path, dtype=np.float32, mode="r", shape=(len(self), self.dim))

    def missing(self, sequences: Sequence[str]) -> list[str]:
        """The distinct sequences (in first-seen order) that are not cached yet."""
        seen: set[str] = set()
        out = []
        for sequence in sequences:
            key = sequence_hash(sequence)
            if key not in self.rows and key not in seen:
                seen.add(key)
                out.append(sequence)
        return out

    def fill(self, sequences: Sequence[str], *, chunk: int = 256, progress: bool = True) -> int:
        """Compute and store the features of every uncached sequence.

        Returns:
            The number of rows added.
        """
        todo = self.missing(sequences)
        if not todo:
            return 0
        log.info("computing %s features of %d sequences", self.extractor.name, len(todo))
        with tqdm(total=len(todo), unit="seq", desc=f"features {self.extractor.name}",
                  disable=not progress) as bar:
            for start in range(0, len(todo), chunk):
                batch = todo[start : start + chunk]
                features = np.ascontiguousarray(self.extractor.extract(batch), dtype=np.float32)
                if features.shape != (len(batch), self.dim):
                    raise InputError(
                        f"{self.extractor.name} returned features of shape {features.shape}, "
                        f"expected {(len(batch), self.dim)}"
                    )
                with self.data_path.open("ab") as handle:
                    handle.write(features.tobytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                lines = []
                for sequence in batch:
                    key = sequence_hash(sequence)
                    self.rows[key] = len(self.rows)
                    lines.append(f"{key}\t{self.rows[key]}\n")
                with self.index_path.open("a") as handle:
                    handle.writelines(lines)
                bar.update(len(batch))
        return len(todo)

    def get(self, sequences: Sequence[str], *, progress: bool = True) -> np.ndarray:
        """Features of ``sequences`` in order (computing any that are missing), as an array."""
        self.fill(sequences, progress=progress)
        rows = np.fromiter((self.rows[sequence_hash(s)] for s in sequences), dtype=np.int64,
                           count=len(sequences))
        return np.asarray(self.array()[rows], dtype=np.float32)


class CachedFeatures(FeatureExtractor):
    """A feature extractor that reads a :class:`FeatureCache` (computing and adding misses).

    It lets a head's embedder (:class:`~rinalmo_search.embedder.features.FeatureHeadEmbedder`)
    reuse the features its training cached, so a frozen backbone runs once per sequence.

    Arguments:
        cache: the cache; its extractor computes what the cache lacks.
    """

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache

    @property
    def name(self) -> str:
        return self.cache.extractor.name

    @property
    def dim(self) -> int:
        return self.cache.dim

    def extract(self, sequences: Sequence[str]) -> np.ndarray:
        return self.cache.get(sequences, progress=False)

    def describe(self) -> dict[str, Any]:
        return self.cache.extractor.describe()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) or "_"
