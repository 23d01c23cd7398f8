"""The compact default model: k-mer composition features plus a learned projection.

No language model: a sequence becomes several k-mer count spectra (contiguous k-mers and
*spaced* k-mers, whose don't-care positions make them robust to substitutions), each square-rooted
and normalised. Two views of those features are concatenated into the 512-d vector:

* a fixed random projection of the weighted spectra (an alignment-free composition similarity,
  like the ``kmer`` baseline but over several patterns), and
* a learned linear projection trained with the supervised contrastive loss on the training
  families of our split, with divergence-mimicking augmentation (random substitutions, short
  insertions and deletions) — see :mod:`rinalmo_search.training.compact` and the
  model card.

Cosine similarity of two vectors is then ``w_fixed * cos_fixed + w_learned * cos_learned``
(each view is unit-normalised and scaled by the square root of its weight). Features are built
sparse (SciPy CSR: a sequence fills few of the 4**k bins), so embedding runs at thousands of
sequences per second on one core. The model file is a NumPy ``.npz`` archive, so the local
path never imports torch (``import torch`` alone costs about a second per process).

For export and serving, :class:`~rinalmo_search.embedder.compact_torch.CompactTorchModule`
computes the same vectors in torch from RiNALMo token ids (``input_ids``, ``attention_mask``),
so ``rinalmo-search export`` can script the default model for Triton.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rinalmo_search.errors import ConfigError

from .base import Embedder, ModelInfo, l2_normalise
from .kmer import NUCLEOTIDE_CODES
from .registry import COMPACT_FORMAT

log = logging.getLogger(__name__)


#: The weights file shipped with the package.
DEFAULT_WEIGHTS = Path(__file__).parent / "models" / "compact-kmer-v1.npz"


@dataclass
class CompactConfig:
    """Feature and output settings of a compact model (stored in its weights file).

    Attributes:
        patterns: k-mer patterns; ``"11111"`` is a contiguous 5-mer, ``"11011"`` a spaced
            4-of-5 (``0`` = don't care).
        block_weights: weight of each pattern's normalised spectrum in the fixed view.
        dim: output dimension.
        learned_dim: dimensions given to the learned view (0: fixed view only).
        learned_weight: share of the cosine given to the learned view (0..1).
        seed: seed of the fixed random projection.
    """

    patterns: list[str] = field(
        default_factory=lambda: ["111", "1111", "11111", "111111", "1101011", "11011"]
    )
    block_weights: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.0, 1.0, 1.0, 1.0])
    dim: int = 512
    learned_dim: int = 0
    learned_weight: float = 0.0
    seed: int = 20240605

    def validate(self) -> None:
        """Raises :class:`ConfigError` naming an inconsistent value."""
        if len(self.patterns) != len(self.block_weights):
            raise ConfigError(
                f"Invalid compact config: {len(self.patterns)} patterns but "
                f"{len(self.block_weights)} block weights (expected equal counts)"
            )
        for pattern in self.patterns:
            if not pattern or set(pattern) - {"0", "1"} or pattern[0] != "1" or pattern[-1] != "1":
                raise ConfigError(
                    f"Invalid k-mer pattern: {pattern!r} (expected 0/1 characters, 1 at both ends)"
                )
        if not 0 <= self.learned_dim < self.dim:
            raise ConfigError(
                f"Invalid 'learned_dim' value: {self.learned_dim} (expected 0..{self.dim - 1})"
            )
        if not 0.0 <= self.learned_weight <= 1.0:
            raise ConfigError(
                f"Invalid 'learned_weight' value: {self.learned_weight} (expected 0..1)"
            )


def _batch_codes(sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The batch as one code array with a separator after each sequence, and each position's
    sequence index; each pattern then costs a few vectorised passes for the whole batch."""
    raw = np.frombuffer(("\x00".join(sequences) + "\x00").encode("ascii", "replace"), np.uint8)
    separators = raw == 0
    return NUCLEOTIDE_CODES[raw], np.cumsum(separators) - separators


def _pattern_windows(
    codes: np.ndarray, owner: np.ndarray, pattern: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sequence index and k-mer bin of every valid window of ``pattern``, and the bin count.

    A window is valid when its cared-for positions are all A/C/G/U and it does not cross a
    separator (separators code as 255, but don't-care positions could skip one, so the span's
    first and last owners are compared).
    """
    offsets = [i for i, c in enumerate(pattern) if c == "1"]
    size = 4 ** len(offsets)
    m = len(codes) - len(pattern) + 1
    if m <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, size
    index = np.zeros(m, dtype=np.int64)
    valid = np.ones(m, dtype=bool)
    for offset in offsets:
        window = codes[offset : offset + m]
        valid &= window != 255
        index = index * 4 + (window & 3)
    valid &= owner[:m] == owner[len(pattern) - 1 : len(pattern) - 1 + m]
    return owner[:m][valid], index[valid], size


def pattern_spectrum(sequence: str, pattern: str) -> np.ndarray:
    """Raw counts of one (possibly spaced) k-mer pattern over one sequence (4**weight bins)."""
    _, index, size = _pattern_windows(*_batch_codes([sequence]), pattern)
    return np.bincount(index, minlength=size).astype(np.float32)


def features(sequences: Sequence[str], patterns: Sequence[str]) -> list[np.ndarray]:
    """Per pattern, a ``(n, 4**weight)`` block of square-rooted, unit-norm spectra.

    The batch is coded once as one array with a separator between sequences, so each pattern
    costs a few vectorised passes however many sequences there are.
    """
    n = len(sequences)
    codes, owner = _batch_codes(sequences)
    blocks = []
    for pattern in patterns:
        rows, index, size = _pattern_windows(codes, owner, pattern)
        counts = np.bincount(rows * size + index, minlength=n * size)
        blocks.append(l2_normalise(np.sqrt(counts.astype(np.float32).reshape(n, size))))
    return blocks


def sparse_features(
    sequences: Sequence[str], patterns: Sequence[str], weights: Sequence[float] | np.ndarray
) -> Any:
    """The weighted, concatenated spectra of :func:`features` as a SciPy CSR matrix.

    Same values as ``np.concatenate([w * block for ...])`` but without materialising the
    mostly-empty 4**k columns: a 100-nt sequence fills at most ~100 bins of each pattern.
    """
    from scipy.sparse import csr_matrix

    n = len(sequences)
    codes, owner = _batch_codes(sequences)
    rows, cols = [], []
    windows = []  # per pattern: number of valid windows of each sequence (the block's norm²)
    starts = [0]
    for pattern in patterns:
        row, index, size = _pattern_windows(codes, owner, pattern)
        rows.append(row)
        cols.append(index + starts[-1])
        windows.append(np.bincount(row, minlength=n))
        starts.append(starts[-1] + size)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    # the COO -> CSR conversion sums repeated (row, column) pairs: the counts
    matrix = csr_matrix((np.ones(row.size, dtype=np.float32), (row, col)), shape=(n, starts[-1]))
    matrix.sum_duplicates()
    entry_row = np.repeat(np.arange(n), np.diff(matrix.indptr))
    block = np.searchsorted(np.asarray(starts[1:]), matrix.indices, side="right")
    norms = np.sqrt(np.maximum(np.stack(windows), 1)).astype(np.float32)  # (patterns, n)
    scale = np.asarray(weights, dtype=np.float32)[block] / norms[block, entry_row]
    matrix.data = np.sqrt(matrix.data) * scale
    return matrix


class CompactEmbedder(Embedder):
    """Multi-pattern k-mer features → fixed projection ⊕ learned projection → unit vector.

    Arguments:
        config: feature settings.
        learned: ``(n_features, learned_dim)`` projection matrix of the learned view, or
            ``None`` when ``config.learned_dim`` is 0.
        name: model name.
        version: model version.
    """

    def __init__(
        self,
        config: CompactConfig | None = None,
        learned: np.ndarray | None = None,
        *,
        name: str = "compact",
        version: str = "0",
    ) -> None:
        self.config = config or CompactConfig()
        self.config.validate()
        n_features = sum(4 ** p.count("1") for p in self.config.patterns)
        fixed_dim = self.config.dim - self.config.learned_dim
        rng = np.random.default_rng(self.config.seed)
        self._projection = (
            rng.standard_normal((n_features, fixed_dim)) / np.sqrt(fixed_dim)
        ).astype(np.float32)
        if self.config.learned_dim:
            if learned is None or learned.shape != (n_features, self.config.learned_dim):
                found = None if learned is None else learned.shape
                raise ConfigError(
                    f"Invalid learned projection shape: {found} "
                    f"(expected {(n_features, self.config.learned_dim)})"
                )
        self._learned: np.ndarray | None = (
            np.asarray(learned, dtype=np.float32) if self.config.learned_dim else None
        )
        self._weights = np.sqrt(np.asarray(self.config.block_weights, dtype=np.float32))
        self._info = ModelInfo(name=name, version=version, dim=self.config.dim)
        #: what the model file records besides the weights (training split, arguments, ...)
        self.metadata: dict[str, Any] = {}

    @property
    def info(self) -> ModelInfo:
        return self._info

    def feature_matrix(self, sequences: Sequence[str]) -> np.ndarray:
        """Weighted, concatenated spectra ``(n, n_features)`` (the input of both views)."""
        blocks = features(sequences, self.config.patterns)
        return np.concatenate([w * b for w, b in zip(self._weights, blocks, strict=True)], axis=1)

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        if len(sequences) == 0:
            return np.zeros((0, self.config.dim), dtype=np.float32)
        x = sparse_features(sequences, self.config.patterns, self._weights)
        fixed = l2_normalise(x @ self._projection)
        if self._learned is None:
            return fixed
        learned = l2_normalise(x @ self._learned)
        w = self.config.learned_weight
        return l2_normalise(np.concatenate([np.sqrt(1 - w) * fixed, np.sqrt(w) * learned], axis=1))


def save_compact(
    path: str | Path,
    config: CompactConfig,
    learned: np.ndarray | None,
    *,
    name: str,
    version: str,
    metadata: dict | None = None,
) -> None:
    """Write a compact model file: a NumPy ``.npz`` archive of the format tag, a JSON header
    (name, version, config, metadata) and the learned projection in float16.

    Written whole to a temporary name and renamed, so an interrupted save leaves no half file.
    """
    header = {
        "name": name,
        "version": version,
        "config": asdict(config),
        "metadata": metadata or {},
    }
    arrays = {"format": np.array(COMPACT_FORMAT), "header": np.array(json.dumps(header))}
    if learned is not None:
        arrays["learned"] = np.asarray(learned).astype(np.float16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:  # a handle: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)
    partial.replace(path)


def update_compact_metadata(path: str | Path, entries: dict[str, Any]) -> None:
    """Add or replace top-level metadata entries of a compact model file (e.g. the re-ranker's
    calibration); the config and weights are written back unchanged (float16 round trip).

    Raises:
        ConfigError: missing file, or not a compact model file.
    """
    model = load_compact(path)
    save_compact(path, model.config, model._learned, name=model.info.name,
                 version=model.info.version, metadata={**model.metadata, **entries})


def is_compact_file(path: str | Path) -> bool:
    """Whether ``path`` is a compact model file (read without torch: a zip holding format.npy).

    A torch checkpoint is a zip too, but holds ``data.pkl`` instead.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return "format.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_compact(path: str | Path = DEFAULT_WEIGHTS) -> CompactEmbedder:
    """Read a compact model file written by :func:`save_compact`.

    Raises:
        ConfigError: missing file, or not a compact model file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Compact model file not found: {path}")
    if not is_compact_file(path):
        raise ConfigError(
            f"{path}: not a compact model file (expected a .npz archive of format "
            f"{COMPACT_FORMAT!r})"
        )
    with np.load(path, allow_pickle=False) as archive:
        found = str(archive["format"])
        if found != COMPACT_FORMAT:
            raise ConfigError(
                f"{path}: not a compact model file (expected format {COMPACT_FORMAT!r}, "
                f"found {found!r})"
            )
        header = json.loads(str(archive["header"]))
        learned = archive["learned"].astype(np.float32) if "learned" in archive else None
    model = CompactEmbedder(
        CompactConfig(**header["config"]), learned, name=header["name"], version=header["version"]
    )
    model.metadata = dict(header.get("metadata") or {})
    return model
