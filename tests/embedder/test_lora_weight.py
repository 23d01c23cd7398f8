"""LoRA on the homology head's input projection: the adapted linear exposes ``weight``."""

from __future__ import annotations

import copy

import torch
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.lora import LoRALinear, apply_lora, lora_parameters, merge_lora


def small_head(seed: int) -> HomologyHead:
    torch.manual_seed(seed)
    config = HeadConfig(input_dim=40, hidden_dim=32, output_dim=16, num_blocks=1, num_heads=4,
                        ffn_dim=64, dropout=0.0)
    return HomologyHead(config).eval()


def test_lora_linear_weight_is_the_base_weight_and_input_proj_can_be_adapted() -> None:
    head = small_head(5)
    base_weight, base_bias = head.input_proj.weight, head.input_proj.bias
    features = torch.randn(6, 40)
    with torch.no_grad():
        before = head(features)
    apply_lora(head, r=4, alpha=8, targets=("input_proj",))
    adapter = head.input_proj
    assert isinstance(adapter, LoRALinear)
    assert adapter.weight is base_weight and adapter.bias is base_bias
    assert "weight" not in dict(adapter.named_parameters(recurse=False))  # not a new parameter
    with torch.no_grad():
        # forward reads input_proj.weight.dtype: it runs, and equals the base head at init
        torch.testing.assert_close(head(features), before, rtol=0, atol=0)
        for parameter in lora_parameters(head):
            parameter.normal_(std=0.5)
        adapted = head(features)
    assert (adapted - before).abs().max() > 1e-3
    # bf16 weights: the head casts its input to the base weight's dtype
    assert copy.deepcopy(head).to(torch.bfloat16)(features).dtype == torch.float32
    merged = merge_lora(head)
    assert type(merged.input_proj) is torch.nn.Linear
    with torch.no_grad():
        torch.testing.assert_close(merged(features), adapted, rtol=0, atol=1e-5)
