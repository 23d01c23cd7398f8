"""The compact default model: k-mer composition features plus a learned projection.

No language model: a sequence becomes several k-mer count spectra (contiguous k-mers and
*spaced* k-mers, whose don't-care positions make them robust to substitutions), each square-rooted
and normalised. Two views of those features are concatenated into the 512-d vector:

* a fixed random projection of the weighted spectra (an alignment-free composition similarity,
  like the ``kmer`` baseline but over several patterns), and
* a learned linear projection trained with the supervised contrastive loss on the training
  families of our split, with divergence-mimicking augmentation (substitutions, compensatory-like
  paired changes, insertions and deletions) — see ``bench/model_search.py`` and the model card.

Cosine similarity of two vectors is then ``w_fixed * cos_fixed + w_learned * cos_learned``
(each view is unit-normalised and scaled by the square root of its weight). Features are built
sparse (SciPy CSR: a sequence fills few of the 4**k bins), so embedding runs at thousands of
sequences per second on one core; torch is needed only to read the weights file.

For export and serving, :class:`CompactTorchModule` computes the same vectors in torch from
RiNALMo token ids (``input_ids``, ``attention_mask``), so ``rinalmo-search export`` can script
the default model for Triton (numpy stays the local path).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rinalmo_search.errors import ConfigError

from .base import Embedder, ModelInfo, l2_normalise
from .kmer import NUCLEOTIDE_CODES
from .registry import COMPACT_FORMAT

log = logging.getLogger(__name__)


#: The weights file shipped with the package.
DEFAULT_WEIGHTS = Path(__file__).parent / "models" / "compact-kmer-v1.pt"


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
    """Write a compact model file (torch ``.pt``: config, float16 projection, metadata)."""
    import torch

    payload = {
        "format": COMPACT_FORMAT,
        "name": name,
        "version": version,
        "config": asdict(config),
        "learned": None if learned is None else torch.from_numpy(learned.astype(np.float16)),
        "metadata": metadata or {},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, str(path))


def load_compact(path: str | Path = DEFAULT_WEIGHTS) -> CompactEmbedder:
    """Read a compact model file written by :func:`save_compact`.

    Raises:
        ConfigError: missing file, or not a compact model file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Compact model file not found: {path}")
    payload = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != COMPACT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ConfigError(
            f"{path}: not a compact model file (expected format 'rinalmo-search compact 1', "
            f"found {found!r})"
        )
    learned = payload["learned"]
    return CompactEmbedder(
        CompactConfig(**payload["config"]),
        None if learned is None else learned.float().numpy(),
        name=payload["name"],
        version=payload["version"],
    )


def _token_codes() -> list[int]:
    """Nucleotide code (0..3 for A, C, G, T/U; 4 = breaks k-mers) of each RiNALMo token id."""
    from .alphabet import TOKENS

    letters = {"A": 0, "C": 1, "G": 2, "T": 3}  # the tokeniser reads U as T
    return [letters.get(token, 4) for token in TOKENS]


class CompactTorchModule(nn.Module):
    """The compact model from RiNALMo token ids: the same vectors as ``embed``, in torch.

    ``forward(input_ids, attention_mask)`` takes int64 ``[B, L]`` tensors of RiNALMo's alphabet
    (``<cls>`` residues ``<eos>`` padding; mask 1 on real tokens) and returns float32
    ``[B, dim]`` unit rows. Token ids of A, C, G and T (U is tokenised as T) are nucleotides;
    every other token (IUPAC codes, ``-``, ``<unk>``, specials, padding, masked positions)
    breaks the k-mers that would use it, as a non-ACGU character does in
    :func:`sparse_features`; a spaced pattern's don't-care positions may hold anything. Each
    pattern's window counts are gathered with ``scatter_add_`` into a dense block (``4**weight``
    columns), square-rooted and divided by the root of the row's number of valid windows (the
    block's L2 norm), weighted, then projected as in :meth:`CompactEmbedder.embed`.

    Meant for export and serving (TorchScript, Triton); numpy stays the fast local path.
    Scriptable: no shape is frozen, any length works.

    Arguments:
        source: the compact model; its projections become float32 buffers.
    """

    # (attribute types are inferred by TorchScript from the values set in __init__)

    def __init__(self, source: CompactEmbedder) -> None:
        super().__init__()
        config = source.config
        self.offsets = [[i for i, c in enumerate(p) if c == "1"] for p in config.patterns]
        self.spans = [len(p) for p in config.patterns]
        self.sizes = [4 ** len(o) for o in self.offsets]
        self.block_scales = [float(w) for w in source._weights]
        self.fixed_dim = int(source._projection.shape[1])
        w = float(config.learned_weight)
        # numpy scales the float32 views by these Python floats: the same rounding here
        self.view_scales = [float(np.sqrt(1 - w)), float(np.sqrt(w))]
        token_codes = _token_codes()
        self.n_tokens = len(token_codes)
        self.register_buffer("token_codes", torch.tensor(token_codes, dtype=torch.int64))
        projection = source._projection
        if source._learned is not None:
            projection = np.concatenate([projection, source._learned], axis=1)
        self.register_buffer("projection", torch.from_numpy(projection.astype(np.float32)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``[B, dim]`` of a padded batch of token ids."""
        n_tokens = self.n_tokens
        known = (input_ids >= 0) & (input_ids < n_tokens)
        # (buffers: mypy sees nn.Module attributes as Tensor | Module)
        codes = self.token_codes[input_ids.clamp(0, n_tokens - 1)]  # type: ignore[index]
        valid = known & (codes < 4) & (attention_mask != 0)
        codes = codes.clamp(0, 3)
        batch, length = input_ids.shape
        device = input_ids.device
        blocks: list[torch.Tensor] = []
        for p in range(len(self.offsets)):
            size = self.sizes[p]
            m = length - self.spans[p] + 1
            if m <= 0:
                blocks.append(torch.zeros(batch, size, dtype=torch.float32, device=device))
                continue
            index = torch.zeros(batch, m, dtype=torch.int64, device=device)
            ok = torch.ones(batch, m, dtype=torch.bool, device=device)
            for offset in self.offsets[p]:
                index = index * 4 + codes[:, offset : offset + m]
                ok = ok & valid[:, offset : offset + m]
            hits = ok.to(torch.float32)
            counts = torch.zeros(batch, size, dtype=torch.float32, device=device)
            counts.scatter_add_(1, index, hits)
            norms = torch.sqrt(hits.sum(dim=1, keepdim=True).clamp(min=1.0))
            blocks.append(torch.sqrt(counts) * (self.block_scales[p] / norms))
        projected = torch.cat(blocks, dim=1) @ self.projection  # type: ignore[operator]
        fixed = _unit(projected[:, : self.fixed_dim])
        if projected.shape[1] == self.fixed_dim:
            return fixed
        learned = _unit(projected[:, self.fixed_dim :])
        both = torch.cat([fixed * self.view_scales[0], learned * self.view_scales[1]], dim=1)
        return _unit(both)


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length, all-zero rows kept zero (as :func:`l2_normalise`)."""
    norms = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    return vectors / norms.clamp(min=1e-12)


def to_torch_module(embedder: CompactEmbedder) -> CompactTorchModule:
    """The compact model as a scriptable module (see :class:`CompactTorchModule`), eval mode."""
    return CompactTorchModule(embedder).eval()
