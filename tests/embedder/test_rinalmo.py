"""The backbone: presets, official key layout, and numerics against an independent reference."""

from __future__ import annotations

import pytest
import torch
from embedder_testkit import SEQUENCES, random_model
from rinalmo_reference import reference_representation
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.rinalmo import RiNALMoConfig, build_model, count_parameters


@pytest.mark.parametrize(
    ("preset", "blocks", "width", "ffn", "millions"),
    [("nano", 6, 320, 853, None), ("micro", 12, 480, 1280, 33.2),
     ("mega", 30, 640, 1706, 147.6), ("giga", 33, 1280, 3413, 649.2)],
)
def test_presets(preset: str, blocks: int, width: int, ffn: int, millions: float | None) -> None:
    config = RiNALMoConfig.preset(preset)
    assert (config.num_blocks, config.embed_dim, config.num_heads, config.ffn_dim) == (
        blocks, width, 20, ffn
    )
    if millions is not None:
        # built on the meta device: no memory, exact parameter count
        model = build_model(preset, device="meta")
        assert round(count_parameters(model) / 1e6, 1) == millions


def test_unknown_preset_message() -> None:
    with pytest.raises(ValueError, match=r"Unknown RiNALMo preset 'tera' \(known: nano, micro"):
        RiNALMoConfig.preset("tera")


def test_state_dict_keys_are_the_official_ones() -> None:
    model = build_model(RiNALMoConfig.preset("nano", num_blocks=1), device="meta")
    block = "transformer.blocks.0."
    expected = {"embedding.weight", "transformer.final_layer_norm.weight",
                "transformer.final_layer_norm.bias"} | {
        block + key for key in (
            "mh_attn.Wqkv.weight", "mh_attn.out_proj.weight",
            "attn_layer_norm.weight", "attn_layer_norm.bias",
            "transition.0.linear.weight", "transition.0.linear.bias",
            "transition.0.linear_gate.weight", "transition.0.linear_gate.bias",
            "transition.0.beta", "transition.2.weight", "transition.2.bias",
            "out_layer_norm.weight", "out_layer_norm.bias",
        )
    }
    state = model.state_dict()
    assert set(state) == expected
    assert tuple(state[block + "mh_attn.Wqkv.weight"].shape) == (960, 320)
    assert tuple(state["embedding.weight"].shape) == (22, 320)


@pytest.mark.parametrize("preset", ["nano", "micro"])
def test_matches_reference_forward(preset: str) -> None:
    model = random_model(preset, num_blocks=2, seed=3)
    ids, mask = batch_encode(SEQUENCES)
    tokens = torch.from_numpy(ids)
    with torch.no_grad():
        ours = model(tokens, torch.from_numpy(mask))
        ref = reference_representation(model.state_dict(), tokens)
    real = torch.from_numpy(mask).bool()
    assert (ours - ref)[real].abs().max().item() <= 1e-5


def test_mask_tokens_follow_token_dropout_scaling() -> None:
    model = random_model("nano", num_blocks=1, seed=4)
    ids, _ = batch_encode(SEQUENCES[:2])
    tokens = torch.from_numpy(ids)
    tokens[0, 3:9] = 4  # <mask>
    with torch.no_grad():
        ours = model(tokens)
        ref = reference_representation(model.state_dict(), tokens)
    real = tokens.ne(1)
    assert (ours - ref)[real].abs().max().item() <= 1e-5


def test_textbook_pre_ln_block_would_differ() -> None:
    """Guards the unusual block order: a pre-LN residual gives other outputs."""
    model = random_model("nano", num_blocks=1, seed=5)
    ids, _ = batch_encode(SEQUENCES[:1])
    tokens = torch.from_numpy(ids)
    block = model.transformer.blocks[0]
    with torch.no_grad():
        x = model.embedding(tokens) * 0.88
        from rinalmo_search.embedder.rinalmo import rotary_tables

        cos, sin = rotary_tables(tokens.shape[1], model.config.head_dim, 10000.0,
                                 torch.device("cpu"))
        pre_ln = x + block.mh_attn(block.attn_layer_norm(x), cos, sin, None)
        pre_ln = pre_ln + block.transition(block.out_layer_norm(pre_ln))
        textbook = model.transformer.final_layer_norm(pre_ln)
        official = model(tokens)
    assert (textbook - official).abs().max().item() > 1e-2


def test_padding_does_not_change_real_tokens() -> None:
    model = random_model("nano", num_blocks=2, seed=6)
    ids, mask = batch_encode(["ACGUACGU"], pad_to=40)
    alone, _ = batch_encode(["ACGUACGU"])
    with torch.no_grad():
        padded = model(torch.from_numpy(ids), torch.from_numpy(mask))[0, :10]
        single = model(torch.from_numpy(alone))[0]
    assert (padded - single).abs().max().item() <= 1e-5


def test_bfloat16_runs_and_stays_close() -> None:
    model = random_model("nano", num_blocks=2, seed=7)
    ids, mask = batch_encode(SEQUENCES[:2])
    with torch.no_grad():
        full = model(torch.from_numpy(ids), torch.from_numpy(mask))
        half = model.to(torch.bfloat16)(torch.from_numpy(ids), torch.from_numpy(mask))
    assert half.dtype == torch.bfloat16
    real = torch.from_numpy(mask).bool()
    assert (half.float() - full)[real].abs().max().item() < 0.25
