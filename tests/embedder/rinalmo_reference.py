"""An independent, functional re-statement of the official RiNALMo forward pass.

Written from the official ``non_flash`` code's equations (explicit matmul + softmax attention
with ``-inf`` key masking, rotate-half rotary tables, token-dropout scaling, the official block
order), reading tensors straight from an official-layout state dict. Tests compare our module
against it, so they never depend on the official repository itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F


def reference_representation(
    state: dict[str, Tensor], tokens: Tensor, *, num_heads: int = 20
) -> Tensor:
    """Final-LayerNorm representations ``(B, L, d)`` of ``tokens`` under ``state``."""
    pad, mask_token = 1, 4
    emb = state["embedding.weight"]
    d = emb.shape[1]
    head = d // num_heads
    x = emb[tokens]
    pad_mask = tokens.eq(pad)
    is_mask = tokens.eq(mask_token)
    x = torch.where(is_mask.unsqueeze(-1), torch.zeros_like(x), x)
    observed = is_mask.sum(-1) / (~pad_mask).sum(-1)
    x = x * (1 - 0.15 * 0.8) / (1 - observed[..., None, None])

    length = tokens.shape[1]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head, 2).float() / head))
    freqs = torch.einsum("i,j->ij", torch.arange(length).float(), inv_freq)
    table = torch.cat((freqs, freqs), dim=-1)
    cos, sin = table.cos(), table.sin()

    def rot(t: Tensor) -> Tensor:
        a, b = t.chunk(2, dim=-1)
        return torch.cat((-b, a), dim=-1)

    blocks = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.blocks."))
    for i in range(blocks):
        p = f"transformer.blocks.{i}."
        x = F.layer_norm(x, (d,), state[p + "attn_layer_norm.weight"],
                         state[p + "attn_layer_norm.bias"], 1e-5)
        qkv = x @ state[p + "mh_attn.Wqkv.weight"].T
        batch = x.shape[0]
        qkv = qkv.view(batch, length, 3, num_heads, head).permute(0, 3, 2, 1, 4)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        scores = q @ k.transpose(-1, -2) / math.sqrt(head)
        scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
        attended = scores.softmax(-1) @ v
        attended = attended.transpose(1, 2).reshape(batch, length, d)
        x = x + attended @ state[p + "mh_attn.out_proj.weight"].T
        residual = x
        h = F.layer_norm(x, (d,), state[p + "out_layer_norm.weight"],
                         state[p + "out_layer_norm.bias"], 1e-5)
        lin = h @ state[p + "transition.0.linear.weight"].T + state[p + "transition.0.linear.bias"]
        gate = (h @ state[p + "transition.0.linear_gate.weight"].T
                + state[p + "transition.0.linear_gate.bias"])
        swish = lin * torch.sigmoid(state[p + "transition.0.beta"] * lin)
        out = (swish * gate) @ state[p + "transition.2.weight"].T + state[p + "transition.2.bias"]
        x = residual + out
    return F.layer_norm(x, (d,), state["transformer.final_layer_norm.weight"],
                        state["transformer.final_layer_norm.bias"], 1e-5)


def reference_pooled(state: dict[str, Tensor], tokens: Tensor) -> Tensor:
    """Mean over residue tokens (not ``<cls>``/``<eos>``/``<pad>``) of the representations."""
    rep = reference_representation(state, tokens)
    keep = (tokens > 2).unsqueeze(-1).float()
    return (rep * keep).sum(1) / keep.sum(1)
