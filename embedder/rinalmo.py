"""RiNALMo, the RNA language model of lbcb-sci/RiNALMo, in plain PyTorch.

Numerically the official model (``non_flash`` branch, and the flash-attention ``main`` branch
it mirrors), with the same state-dict keys, so official checkpoints load as they are:

- token embedding (22 × d, ``<pad>`` as padding index), then ESM-style *token dropout scaling*,
  which the official code applies at inference too: embeddings of ``<mask>`` tokens are zeroed
  and every embedding is multiplied by ``(1 - 0.15·0.8) / (1 - observed mask ratio)``, i.e. by
  0.88 when no token is masked;
- ``num_blocks`` Transformer blocks in the official (unusual) order: the residual stream is
  *replaced* by its normalised value before attention,
  ``x = LN_attn(x); x = x + MHA(x); x = x + FFN(LN_out(x))``;
- multi-head self-attention with fused bias-free ``Wqkv`` (q, k, v stacked in that order),
  rotary position embeddings on every head (rotate-half form, base 10000, positions counted
  from ``<cls>``), and a bias-free output projection; here through
  :func:`torch.nn.functional.scaled_dot_product_attention`, so it runs on CPU and GPU alike;
- SwiGLU feed-forward with a learnable ``beta`` (``linear(x)·σ(β·linear(x)) · gate(x)``),
  hidden size ``int(2/3 · 4 · d)``, then a linear back to d;
- a final LayerNorm. Its output is the "representation" the official model returns.

The module is TorchScript-scriptable (rotary tables are computed per call, not cached, so a
scripted model accepts any sequence length). It holds no buffers, so it can be built on the
``meta`` device and filled from a memory-mapped checkpoint without a second copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .alphabet import MASK_IDX, PAD_IDX, TOKENS


@dataclass(frozen=True)
class RiNALMoConfig:
    """Shape and constants of a RiNALMo model.

    Attributes:
        name: preset name (``nano``, ``micro``, ``mega``, ``giga``) or ``custom``.
        embed_dim: model width d.
        num_blocks: number of Transformer blocks.
        num_heads: attention heads (20 in every official preset).
        ffn_dim: SwiGLU hidden size; official ``int(2 / 3 * 4 * embed_dim)``.
        alphabet_size: number of tokens (22).
        pad_idx: id of ``<pad>``.
        mask_idx: id of ``<mask>``.
        token_dropout: apply ESM-style token-dropout scaling (official: on, also at inference).
        mask_ratio: masking ratio used in pre-training (part of the token-dropout scale).
        mask_token_prob: share of masked positions shown as ``<mask>`` (idem).
        rope_base: base of the rotary frequencies.
        attn_bias: whether ``Wqkv`` and ``out_proj`` have biases (official: no).
        layer_norm_eps: LayerNorm epsilon.
        attention_dropout: dropout on attention weights (training only).
        residual_dropout: dropout on both residual branches (training only).
        transition_dropout: dropout inside the feed-forward (training only).
    """

    name: str = "micro"
    embed_dim: int = 480
    num_blocks: int = 12
    num_heads: int = 20
    ffn_dim: int = 1280
    alphabet_size: int = len(TOKENS)
    pad_idx: int = PAD_IDX
    mask_idx: int = MASK_IDX
    token_dropout: bool = True
    mask_ratio: float = 0.15
    mask_token_prob: float = 0.8
    rope_base: float = 10000.0
    attn_bias: bool = False
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.1
    residual_dropout: float = 0.1
    transition_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"Invalid RiNALMo shape: embed_dim {self.embed_dim} is not divisible by "
                f"num_heads {self.num_heads}"
            )
        if (self.embed_dim // self.num_heads) % 2:
            raise ValueError(
                f"Invalid RiNALMo shape: head size {self.embed_dim // self.num_heads} is odd "
                "(rotary embeddings need an even head size)"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RiNALMoConfig:
        """The configuration of an official preset, optionally with some fields changed.

        Raises:
            ValueError: the name is not a preset.
        """
        try:
            embed_dim, num_blocks = PRESETS[name]
        except KeyError:
            known = ", ".join(PRESETS)
            raise ValueError(f"Unknown RiNALMo preset {name!r} (known: {known})") from None
        config = cls(
            name=name, embed_dim=embed_dim, num_blocks=num_blocks, ffn_dim=ffn_size(embed_dim)
        )
        if not overrides:
            return config
        reshaped = {"embed_dim", "num_blocks", "num_heads", "ffn_dim"} & set(overrides)
        if reshaped and "name" not in overrides:
            overrides = {**overrides, "name": "custom"}
        return replace(config, **overrides)

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.embed_dim // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for model files); :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RiNALMoConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls(**values)


#: Official presets: name → (embed_dim, num_blocks); all have 20 heads.
PRESETS: dict[str, tuple[int, int]] = {
    "nano": (320, 6),
    "micro": (480, 12),
    "mega": (640, 30),
    "giga": (1280, 33),
}


def ffn_size(embed_dim: int, transition_factor: int = 4) -> int:
    """SwiGLU hidden size, computed with the official expression (float rounding included)."""
    return int(2 / 3 * transition_factor * embed_dim)


def rotate_half(x: Tensor) -> Tensor:
    """``[x1, x2] → [-x2, x1]`` on the last dimension (the non-interleaved RoPE form)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_tables(
    length: int, head_dim: int, base: float, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Cosine and sine tables ``(length, head_dim)`` in float32, positions 0..length-1."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    inv_freq = 1.0 / torch.pow(torch.full_like(exponents, base), exponents)
    positions = torch.arange(length, dtype=torch.float32, device=device)
    freqs = torch.outer(positions, inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with fused q/k/v projection and rotary embeddings (official ``mh_attn``)."""

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.embed_dim = config.embed_dim
        self.dropout = config.attention_dropout
        self.Wqkv = nn.Linear(config.embed_dim, 3 * config.embed_dim, bias=config.attn_bias)
        self.out_proj = nn.Linear(config.embed_dim, config.embed_dim, bias=config.attn_bias)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor | None) -> Tensor:
        """Attend.

        Arguments:
            x: ``(B, L, d)``.
            cos, sin: rotary tables ``(L, head_dim)`` in ``x``'s dtype.
            attn_mask: boolean ``(B, 1, 1, L)``, True where a key may be attended; None when
                nothing is padded.
        """
        batch, length, _ = x.shape
        qkv = self.Wqkv(x).view(batch, length, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, H, L, Dh)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(batch, length, self.embed_dim)
        return self.out_proj(out)


class SwiGLU(nn.Module):
    """``linear(x) · σ(β · linear(x)) · linear_gate(x)`` with a learnable scalar β."""

    def __init__(self, size_in: int, size_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(size_in, size_out)
        self.linear_gate = nn.Linear(size_in, size_out)
        self.beta = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        out = self.linear(x)
        return out * torch.sigmoid(self.beta * out) * self.linear_gate(x)


class TransformerBlock(nn.Module):
    """One block in the official order (the attention residual is taken after the norm)."""

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.mh_attn = MultiHeadSelfAttention(config)
        self.attn_layer_norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)
        self.transition = nn.Sequential(
            SwiGLU(config.embed_dim, config.ffn_dim),
            nn.Dropout(config.transition_dropout),
            nn.Linear(config.ffn_dim, config.embed_dim),
        )
        self.out_layer_norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)
        self.residual_dropout_1 = nn.Dropout(config.residual_dropout)
        self.residual_dropout_2 = nn.Dropout(config.residual_dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor | None) -> Tensor:
        x = self.attn_layer_norm(x)
        x = x + self.residual_dropout_1(self.mh_attn(x, cos, sin, attn_mask))
        return x + self.residual_dropout_2(self.transition(self.out_layer_norm(x)))


class Transformer(nn.Module):
    """The block stack and the final LayerNorm (official ``transformer``)."""

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([TransformerBlock(config) for _ in range(config.num_blocks)])
        self.final_layer_norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor | None) -> Tensor:
        for block in self.blocks:
            x = block(x, cos, sin, attn_mask)
        return self.final_layer_norm(x)


class RiNALMo(nn.Module):
    """The RiNALMo encoder; returns per-token representations ``(B, L, d)``.

    Arguments:
        config: shape and constants; see :class:`RiNALMoConfig` and its presets.
    """

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = config.embed_dim
        self.head_dim = config.head_dim
        self.pad_idx = config.pad_idx
        self.mask_idx = config.mask_idx
        self.rope_base = float(config.rope_base)
        self.token_dropout = config.token_dropout
        # the official code writes this as 1 - mask_ratio * mask_token_prob in float64
        self.token_dropout_keep = 1.0 - config.mask_ratio * config.mask_token_prob
        # initialised here rather than by nn.Embedding: on the meta device (checkpoint loading)
        # nothing needs initialising, and meta normal_() would pull in torch._dynamo
        weight = torch.empty(config.alphabet_size, config.embed_dim)
        if not weight.is_meta:
            with torch.no_grad():
                nn.init.normal_(weight)
                weight[config.pad_idx].zero_()
        self.embedding = nn.Embedding(
            config.alphabet_size, config.embed_dim, padding_idx=config.pad_idx, _weight=weight
        )
        self.transformer = Transformer(config)

    def forward(self, tokens: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Representations of a batch of token ids.

        Arguments:
            tokens: int64 ``(B, L)`` ids (``<cls> … <eos>`` then ``<pad>``).
            attention_mask: ``(B, L)``, nonzero on real tokens; by default, every token that is
                not ``<pad>`` (what the official model does).

        Returns:
            ``(B, L, d)`` final-LayerNorm outputs, in the parameters' dtype.
        """
        if attention_mask is None:
            keep = tokens.ne(self.pad_idx)
        else:
            keep = attention_mask.ne(0)
        x = self.embedding(tokens)
        if self.token_dropout:
            is_mask = tokens.eq(self.mask_idx)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            observed = is_mask.sum(dim=-1).float() / keep.sum(dim=-1).float()
            scale = self.token_dropout_keep / (1.0 - observed)
            x = (x.float() * scale[:, None, None]).to(x.dtype)
        cos, sin = rotary_tables(tokens.shape[1], self.head_dim, self.rope_base, tokens.device)
        cos = cos.to(x.dtype)
        sin = sin.to(x.dtype)
        attn_mask: Tensor | None = None
        if not bool(keep.all()):
            attn_mask = keep[:, None, None, :]
        return self.transformer(x, cos, sin, attn_mask)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())


def build_model(config: RiNALMoConfig | str, *, device: str | torch.device = "cpu") -> RiNALMo:
    """A RiNALMo with freshly initialised weights (a preset name or a config).

    On ``device="meta"`` no memory is allocated; fill it with
    ``load_state_dict(..., assign=True)``.
    """
    if isinstance(config, str):
        config = RiNALMoConfig.preset(config)
    with torch.device(device):
        return RiNALMo(config)


__all__ = [
    "PRESETS",
    "RiNALMo",
    "RiNALMoConfig",
    "build_model",
    "count_parameters",
    "ffn_size",
]
