"""The compact model in torch, for TorchScript export and Triton (the local path is numpy).

Kept apart from :mod:`.compact` so that embedding with the compact model never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .compact import CompactEmbedder


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
    :func:`~rinalmo_search.embedder.compact.sparse_features`; a spaced pattern's don't-care
    positions may hold anything. Each
    pattern's window counts are gathered with ``scatter_add_`` into a dense block (``4**weight``
    columns), square-rooted and divided by the root of the row's number of valid windows (the
    block's L2 norm), weighted, then projected as in
    :meth:`~rinalmo_search.embedder.compact.CompactEmbedder.embed`.

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
