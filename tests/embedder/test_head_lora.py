"""Homology head (faithful and residue-attending) and LoRA adapters."""

from __future__ import annotations

import pytest
import torch
from embedder_testkit import SEQUENCES, random_model
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import EmbeddingModel
from rinalmo_search.embedder.lora import (
    LoRALinear,
    apply_lora,
    has_lora,
    lora_parameters,
    merge_lora,
)


def test_head_defaults_are_the_design() -> None:
    config = HeadConfig(input_dim=1280)
    assert (config.hidden_dim, config.output_dim, config.num_blocks, config.num_heads,
            config.ffn_dim, config.attend_over_residues) == (768, 512, 6, 8, 3072, False)
    head = HomologyHead(config)
    assert head.input_proj.in_features == 1280 and head.output_proj.out_features == 512
    assert isinstance(head.blocks[0].ffn[1], torch.nn.GELU)


def test_head_outputs_unit_rows() -> None:
    head = HomologyHead(HeadConfig(input_dim=64, num_blocks=2)).eval()
    out = head(torch.randn(5, 64))
    assert out.shape == (5, 512) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)


def test_single_token_attention_is_a_per_vector_map() -> None:
    """Rows do not influence each other: embedding a row alone gives the same vector."""
    head = HomologyHead(HeadConfig(input_dim=32, num_blocks=2)).eval()
    batch = torch.randn(4, 32)
    with torch.no_grad():
        together = head(batch)
        alone = torch.cat([head(batch[i : i + 1]) for i in range(4)])
    assert (together - alone).abs().max().item() <= 1e-6


def test_residue_attending_head_ignores_padding() -> None:
    backbone = random_model("nano", 1)
    head = HomologyHead(HeadConfig(input_dim=320, num_blocks=1, attend_over_residues=True))
    model = EmbeddingModel(backbone, head.eval()).eval()
    ids, mask = batch_encode(SEQUENCES)
    with torch.no_grad():
        batched = model(torch.from_numpy(ids), torch.from_numpy(mask))
        for row, seq in enumerate(SEQUENCES):
            one_ids, one_mask = batch_encode([seq])
            alone = model(torch.from_numpy(one_ids), torch.from_numpy(one_mask))
            assert (alone[0] - batched[row]).abs().max().item() <= 1e-5


def test_head_config_errors() -> None:
    with pytest.raises(ValueError, match="hidden_dim 100 is not divisible by num_heads 8"):
        HeadConfig(input_dim=10, hidden_dim=100)


def _tokens() -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = batch_encode(SEQUENCES)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def test_lora_equals_base_at_init_and_trains_only_adapters() -> None:
    base = random_model("nano", 2, seed=21)
    reference = random_model("nano", 2, seed=21)
    adapted = apply_lora(base, r=16, alpha=32)
    assert has_lora(adapted)
    adapters = [m for m in adapted.modules() if isinstance(m, LoRALinear)]
    assert len(adapters) == 2 * 4  # Wqkv, linear, linear_gate, transition.2 per block
    qkv = adapted.transformer.blocks[0].mh_attn.Wqkv
    assert qkv.splits == 3 and qkv.lora_A.shape == (3, 16, 320) and qkv.scaling == 2.0
    assert torch.count_nonzero(qkv.lora_B) == 0 and torch.count_nonzero(qkv.lora_A) > 0
    trainable = {id(p) for p in adapted.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in lora_parameters(adapted)}
    with torch.no_grad():
        assert torch.equal(adapted(*_tokens()), reference(*_tokens()))


def test_lora_changes_output_and_merges_exactly() -> None:
    model = apply_lora(random_model("nano", 1, seed=22), r=4, alpha=8)
    with torch.no_grad():
        for parameter in lora_parameters(model):
            parameter.normal_(std=0.05)
        adapted_out = model(*_tokens())
    plain = random_model("nano", 1, seed=22)
    with torch.no_grad():
        assert (adapted_out - plain(*_tokens())).abs().max().item() > 1e-3
    merged = merge_lora(model)
    assert not has_lora(merged)
    assert set(merged.state_dict()) == set(plain.state_dict())
    with torch.no_grad():
        assert (merged(*_tokens()) - adapted_out).abs().max().item() <= 1e-4


def test_lora_gradients_reach_adapters() -> None:
    model = apply_lora(random_model("nano", 1, seed=23)).train()
    model(*_tokens()).sum().backward()
    grads = [p.grad for p in lora_parameters(model)]
    assert all(g is not None for g in grads)
    assert any(torch.count_nonzero(g) > 0 for g in grads if g is not None)


def test_lora_without_matching_targets() -> None:
    with pytest.raises(ValueError, match=r"matches the LoRA targets \('nope',\)"):
        apply_lora(random_model("nano", 1), targets=("nope",))
