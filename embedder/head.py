"""The homology head: pooled RiNALMo features → 512-d unit vectors for cosine search.

The faithful design: Linear d→768, one learned position embedding, pre-LN Transformer blocks
(8 heads, FFN 3072, GELU), a final LayerNorm, Linear→512, L2 normalisation.

Note on that design: the head sees *one* token (the pooled vector). Self-attention over a
single token attends to itself with weight 1, so each block reduces to a per-vector map
(``x + W_o W_v LN(x)`` then the FFN); the blocks are a deep residual MLP, and the position
embedding is a learned bias. It is kept because it is the published design; the option
``attend_over_residues=True`` gives the variant where the same blocks attend over the
projected residue representations (with padding masked) before mean pooling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HeadConfig:
    """Shape of a :class:`HomologyHead`.

    Attributes:
        input_dim: width of the backbone features (1280 for giga, 640 mega, 480 micro).
        hidden_dim: width inside the head.
        output_dim: embedding size (the vector stored in Milvus).
        num_blocks: number of Transformer blocks.
        num_heads: attention heads per block.
        ffn_dim: feed-forward hidden size.
        dropout: dropout in the blocks (training only).
        attend_over_residues: attend over residue representations before pooling instead of
            mapping the pooled vector (see the module docstring).
    """

    input_dim: int
    hidden_dim: int = 768
    output_dim: int = 512
    num_blocks: int = 6
    num_heads: int = 8
    ffn_dim: int = 3072
    dropout: float = 0.1
    attend_over_residues: bool = False

    def __post_init__(self) -> None:
        for field_name in ("input_dim", "hidden_dim", "output_dim", "num_heads", "ffn_dim"):
            value = getattr(self, field_name)
            if value < 1:
                raise ValueError(f"Invalid {field_name!r} value: {value} (expected >= 1)")
        if self.num_blocks < 0:
            raise ValueError(f"Invalid 'num_blocks' value: {self.num_blocks} (expected >= 0)")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"Invalid head shape: hidden_dim {self.hidden_dim} is not divisible by "
                f"num_heads {self.num_heads}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for model files)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**values)


class HeadBlock(nn.Module):
    """Pre-LN Transformer block: ``x + MHA(LN(x))``, then ``x + FFN(LN(x))`` with GELU."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_dim // config.num_heads
        self.dropout = config.dropout
        self.norm1 = nn.LayerNorm(config.hidden_dim)
        self.qkv = nn.Linear(config.hidden_dim, 3 * config.hidden_dim)
        self.out_proj = nn.Linear(config.hidden_dim, config.hidden_dim)
        self.norm2 = nn.LayerNorm(config.hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(config.hidden_dim, config.ffn_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, config.hidden_dim),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, length, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.out_proj(attended.transpose(1, 2).reshape(batch, length, width)))
        return x + self.drop(self.ffn(self.norm2(x)))


class HomologyHead(nn.Module):
    """Maps pooled backbone features to unit-length homology embeddings.

    ``forward(pooled)`` takes ``(n, input_dim)`` and returns ``(n, output_dim)`` unit rows.
    Self-attention over the single pooled token is a per-vector map (see the module
    docstring). With ``attend_over_residues``, use :meth:`forward_tokens` on per-residue
    representations instead.

    Arguments:
        config: the head's shape.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.attend_over_residues = config.attend_over_residues
        self.input_proj = nn.Linear(config.input_dim, config.hidden_dim)
        self.position = nn.Parameter(torch.zeros(1, 1, config.hidden_dim))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList([HeadBlock(config) for _ in range(config.num_blocks)])
        self.final_norm = nn.LayerNorm(config.hidden_dim)
        self.output_proj = nn.Linear(config.hidden_dim, config.output_dim)

    def forward(self, pooled: Tensor) -> Tensor:
        """Embed pooled features ``(n, input_dim)`` → unit rows ``(n, output_dim)``."""
        x = self.input_proj(pooled.to(self.input_proj.weight.dtype)).unsqueeze(1) + self.position
        for block in self.blocks:
            x = block(x, None)
        out = self.output_proj(self.final_norm(x[:, 0]))
        return F.normalize(out.float(), dim=-1)

    def forward_tokens(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Residue-attending variant: ``(B, L, input_dim)`` and boolean residue mask ``(B, L)``.

        The blocks attend over residue positions only; the result is mean-pooled over the
        same positions, then projected and normalised.
        """
        x = self.input_proj(hidden.to(self.input_proj.weight.dtype)) + self.position
        # a row without residues (empty sequence) attends to everything rather than to nothing
        attn_mask = (mask | ~mask.any(dim=1, keepdim=True))[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask)
        x = self.final_norm(x)
        weights = mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return F.normalize(self.output_proj(pooled).float(), dim=-1)
