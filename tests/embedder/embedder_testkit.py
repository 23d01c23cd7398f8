"""Small random RiNALMo models written in the official checkpoint layout (embedder tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from rinalmo_search.embedder.pretrained import official_state_dict
from rinalmo_search.embedder.rinalmo import RiNALMo, RiNALMoConfig, build_model

SEQUENCES = [
    "GGGAGCUCAGCCGGUAGAGCAAGCGGCUAGCUCCC",
    "acguACGUnnRYKM-acgu",
    "A",
    "GCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUGCAUG",
    "UUUUUUUUUUCCCC",
]


def random_model(preset: str = "micro", num_blocks: int = 2, seed: int = 0) -> RiNALMo:
    """A preset-width model with few blocks; norms, biases and beta randomised too."""
    torch.manual_seed(seed)
    model = build_model(RiNALMoConfig.preset(preset, num_blocks=num_blocks))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias") or name.endswith("beta"):
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


def save_official(model: RiNALMo, path: Path, *, with_rotary: bool = False,
                  prefix: str = "") -> Path:
    """Write ``model`` as an official checkpoint (plain state dict, lm_mask_head included)."""
    state = official_state_dict(model)
    if with_rotary:  # what the official non_flash code's state_dict() holds
        head = model.config.head_dim
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head, 2).float() / head))
        for i in range(model.config.num_blocks):
            state[f"transformer.blocks.{i}.mh_attn.rotary_emb.inv_freq"] = inv_freq.clone()
    state = {prefix + k: v for k, v in state.items()}
    torch.save(state, path)
    return path
