"""Mean pooling of per-token representations over residue tokens only, in float32.

``<cls>``, ``<eos>`` and padding are excluded (ESM-style), so a sequence gets the same vector
whether it is embedded alone or padded inside a batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .alphabet import CLS_IDX, EOS_IDX, PAD_IDX


def residue_mask(
    tokens: Tensor,
    attention_mask: Tensor,
    cls_idx: int = CLS_IDX,
    eos_idx: int = EOS_IDX,
    pad_idx: int = PAD_IDX,
) -> Tensor:
    """Boolean ``(B, L)``: True on residue tokens (real, and not ``<cls>``/``<eos>``/``<pad>``)."""
    return (
        attention_mask.ne(0)
        & tokens.ne(cls_idx)
        & tokens.ne(eos_idx)
        & tokens.ne(pad_idx)
    )


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden`` over the positions where ``mask`` is true, computed in float32.

    Arguments:
        hidden: ``(B, L, d)`` representations, any float dtype.
        mask: boolean ``(B, L)``, e.g. :func:`residue_mask`.

    Returns:
        ``(B, d)`` float32; rows with no masked-in position are zero.
    """
    weights = mask.to(torch.float32).unsqueeze(-1)
    total = (hidden.to(torch.float32) * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1.0)
    return total / count
