"""Official-layout checkpoints: strict loading, preset inference, errors, downloads."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from embedder_testkit import SEQUENCES, random_model, save_official
from rinalmo_reference import reference_representation
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.pretrained import (
    WEIGHTS_DIR_ENV,
    WEIGHTS_URL_ENV,
    download_weights,
    infer_config,
    load_backbone,
    resolve_checkpoint,
    weights_path,
)

from rinalmo_search.errors import ConfigError, InferenceError


def _forward(model: torch.nn.Module) -> torch.Tensor:
    ids, mask = batch_encode(SEQUENCES)
    with torch.no_grad():
        return model(torch.from_numpy(ids), torch.from_numpy(mask))


def test_official_file_loads_strictly_and_reproduces(micro_checkpoint: Path) -> None:
    model = load_backbone(micro_checkpoint)
    assert (model.config.embed_dim, model.config.num_blocks, model.config.ffn_dim) == (480, 2, 1280)
    assert not model.training
    assert all(p.device.type == "cpu" and not p.is_meta for p in model.parameters())
    state = torch.load(micro_checkpoint, weights_only=True)
    ids, mask = batch_encode(SEQUENCES)
    with torch.no_grad():
        ref = reference_representation(state, torch.from_numpy(ids))
    real = torch.from_numpy(mask).bool()
    assert (_forward(model) - ref)[real].abs().max().item() <= 1e-5


@pytest.mark.parametrize("prefix", ["lm.", "rinalmo."])
def test_prefixed_fine_tuned_layout(tmp_path: Path, prefix: str) -> None:
    source = random_model("nano", 1, seed=11)
    path = save_official(source, tmp_path / "ft.pt", prefix=prefix)
    state = torch.load(path, weights_only=True)
    state["pred_head.weight"] = torch.zeros(3)  # a task head that is not ours to load
    torch.save({"state_dict": state, "epoch": 3}, path)
    loaded = load_backbone(path)
    assert torch.equal(_forward(loaded), _forward(source))


def test_preset_inferred_from_tensors() -> None:
    state = random_model("nano", 6, seed=1).state_dict()
    assert infer_config(state).name == "nano"
    assert infer_config({k: v for k, v in state.items() if ".blocks.5." not in k}).name == "custom"


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    state = random_model("nano", 1).state_dict()
    del state["transformer.blocks.0.out_layer_norm.bias"]
    state["transformer.blocks.0.extra.weight"] = torch.zeros(2)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(InferenceError) as error:
        load_backbone(path)
    message = str(error.value)
    assert "missing keys (1): transformer.blocks.0.out_layer_norm.bias" in message
    assert "unexpected keys (1): transformer.blocks.0.extra.weight" in message
    assert str(path) in message


def test_wrong_shape_is_reported(tmp_path: Path) -> None:
    state = random_model("nano", 1).state_dict()
    state["transformer.blocks.0.mh_attn.out_proj.weight"] = torch.zeros(320, 10)
    with pytest.raises(InferenceError, match=r"wrong shapes \(1\): .*out_proj.weight \(320, 10\) "
                                             r"\(expected \(320, 320\)\)"):
        load_backbone(state)


def test_rotary_buffers_are_checked(tmp_path: Path) -> None:
    model = random_model("nano", 1)
    path = save_official(model, tmp_path / "rot.pt", with_rotary=True)
    load_backbone(path)  # correct buffers are accepted
    state = torch.load(path, weights_only=True)
    state["transformer.blocks.0.mh_attn.rotary_emb.inv_freq"] *= 2
    with pytest.raises(InferenceError, match="rotary frequencies of base 10000"):
        load_backbone(state)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InferenceError, match=f"Cannot read RiNALMo checkpoint {path}"):
        load_backbone(path)


def test_weights_dir_env_and_missing_download_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    assert weights_path("micro") == tmp_path / "rinalmo_micro_pretrained.pt"
    with pytest.raises(InferenceError, match=r"weights download micro.*RINALMO_SEARCH_WEIGHTS_DIR"):
        resolve_checkpoint("micro")
    with pytest.raises(ConfigError, match=r"Unknown RiNALMo weights 'tera'"):
        download_weights("tera")


def test_download_unreachable_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_URL_ENV, "http://127.0.0.1:9/records")  # discard port: refused
    with pytest.raises(InferenceError) as error:
        download_weights("micro", directory=tmp_path, progress=False, timeout=5)
    assert f"put it at {tmp_path / 'rinalmo_micro_pretrained.pt'}" in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_download_with_wrong_checksum_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: tuple[str, Path]
) -> None:
    url, served = file_server
    (served / "rinalmo_micro_pretrained.pt").write_bytes(b"tampered" * 100)
    monkeypatch.setenv(WEIGHTS_URL_ENV, url)
    target = tmp_path / "cache"
    with pytest.raises(InferenceError, match=r"has SHA-256 [0-9a-f]{64} \(expected 910c73aa"):
        download_weights("micro", directory=target, progress=False)
    assert list(target.iterdir()) == []


def test_split_attention_layout_of_the_official_non_flash_model() -> None:
    """``use_flash_attn=False`` in the official code stores to_q/to_k/to_v separately."""
    source = random_model("nano", 2, seed=12)
    split: dict[str, torch.Tensor] = {}
    for key, value in source.state_dict().items():
        if key.endswith("mh_attn.Wqkv.weight"):
            prefix = key[: -len("Wqkv.weight")] + "mh_attn."
            q, k, v = value.chunk(3)
            split |= {prefix + "to_q.weight": q, prefix + "to_k.weight": k,
                      prefix + "to_v.weight": v}
        elif ".mh_attn.out_proj." in key:
            split[key.replace(".mh_attn.out_proj.", ".mh_attn.mh_attn.out_proj.")] = value
        else:
            split[key] = value
    assert not any("Wqkv" in key for key in split)
    assert torch.equal(_forward(load_backbone(split)), _forward(source))
