"""Model files (save/load, load_embedder by path) and TorchScript export with eager parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from embedder_testkit import SEQUENCES, random_model, save_official
from rinalmo_search.embedder import load_embedder
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.export import export_module, export_torchscript, script_module
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import TorchEmbedder
from rinalmo_search.embedder.lora import apply_lora, lora_parameters
from rinalmo_search.embedder.model_file import load_model_file, save_model_file

from rinalmo_search.cli import main
from rinalmo_search.errors import ConfigError, InferenceError

LENGTHS = [1, 9, 70]


def _embedder(attend: bool = False, preset: str = "nano", blocks: int = 1) -> TorchEmbedder:
    torch.manual_seed(5)
    width = 480 if preset == "micro" else 320
    head = HomologyHead(HeadConfig(input_dim=width, num_blocks=blocks,
                                   attend_over_residues=attend)).eval()
    return TorchEmbedder(random_model(preset, blocks), head, name="test-model", version="7",
                         progress=False)


def test_model_file_round_trip(tmp_path: Path) -> None:
    embedder = _embedder()
    path = save_model_file(tmp_path / "m.pt", name="test-model", version="7",
                           backbone=embedder.backbone, head=embedder.head,
                           metadata={"split": {"train": 3}, "recall@10": 0.5})
    loaded = load_model_file(path)
    assert (loaded.name, loaded.version, loaded.metadata["recall@10"]) == ("test-model", "7", 0.5)
    assert loaded.backbone_config == embedder.backbone.config
    again = load_embedder(str(path), progress=False)
    assert again.info == embedder.info
    assert np.abs(again.embed(SEQUENCES) - embedder.embed(SEQUENCES)).max() <= 1e-6


def test_feature_only_model_file_uses_its_backbone_source(tmp_path: Path) -> None:
    embedder = _embedder()
    checkpoint = save_official(embedder.backbone, tmp_path / "backbone.pt")
    path = save_model_file(tmp_path / "head.pt", name="head-only", version="1",
                           backbone=embedder.backbone.config, head=embedder.head,
                           backbone_source=str(checkpoint))
    assert load_model_file(path).backbone_state is None
    again = TorchEmbedder.from_model_file(path, progress=False)
    assert np.abs(again.embed(SEQUENCES) - embedder.embed(SEQUENCES)).max() <= 1e-6
    other = save_official(random_model("nano", 2), tmp_path / "nano2.pt")
    with pytest.raises(InferenceError, match=r"does not match the model file's \(d=320, 1 blocks"):
        TorchEmbedder.from_model_file(path, checkpoint=other)


def test_lora_backbone_is_saved_merged(tmp_path: Path) -> None:
    embedder = _embedder()
    backbone = apply_lora(embedder.backbone, r=4)
    with torch.no_grad():
        for parameter in lora_parameters(backbone):
            parameter.normal_(std=0.05)
        expected = embedder.embed(SEQUENCES)
    path = save_model_file(tmp_path / "lora.pt", name="l", version="1", backbone=backbone,
                           head=embedder.head)
    assert not any("lora" in key for key in load_model_file(path).backbone_state or {})
    assert np.abs(load_embedder(str(path)).embed(SEQUENCES) - expected).max() <= 1e-4


def test_not_a_model_file(tmp_path: Path) -> None:
    path = tmp_path / "official.pt"
    torch.save({"embedding.weight": torch.zeros(2)}, path)
    with pytest.raises(InferenceError, match="not a RiNALMo-Search model file"):
        load_model_file(path)
    with pytest.raises(ConfigError, match="Model file not found"):
        load_embedder(str(tmp_path / "absent.pt"))


@pytest.mark.parametrize(("attend", "preset", "blocks"), [(False, "micro", 2), (True, "nano", 1)])
def test_torchscript_matches_eager_at_any_length(attend: bool, preset: str, blocks: int) -> None:
    embedder = _embedder(attend, preset, blocks)
    eager = export_module(embedder)
    scripted = script_module(embedder)
    for length in LENGTHS:  # a traced module would freeze the first length
        sequences = ["GCAU"[i % 4] * 1 + "ACGU" * (length // 4) for i in range(3)]
        ids, mask = batch_encode(sequences, pad_to=length // 4 * 4 + 8)
        with torch.inference_mode():
            a = eager(torch.from_numpy(ids), torch.from_numpy(mask))
            b = scripted(torch.from_numpy(ids), torch.from_numpy(mask))
        assert b.dtype == torch.float32 and b.shape == (3, 512)
        assert (a - b).abs().max().item() <= 1e-5


def test_export_file_and_signature(tmp_path: Path) -> None:
    embedder = _embedder()
    path = export_torchscript(embedder, tmp_path / "m" / "1" / "model.pt")
    loaded = torch.jit.load(str(path))
    ids, mask = batch_encode(SEQUENCES)
    with torch.inference_mode():
        out = loaded(torch.from_numpy(ids), torch.from_numpy(mask))
    assert np.abs(out.numpy() - embedder.embed(SEQUENCES)).max() <= 1e-5
    assert torch.allclose(out.norm(dim=1), torch.ones(len(SEQUENCES)), atol=1e-5)
    with pytest.raises(ConfigError, match="Cannot export KmerEmbedder"):
        export_torchscript(load_embedder("kmer"), tmp_path / "k.pt")


def test_export_command_writes_repository(tmp_path: Path) -> None:
    embedder = _embedder()
    model_path = save_model_file(tmp_path / "m.pt", name="test-model", version="7",
                                 backbone=embedder.backbone, head=embedder.head)
    repository = tmp_path / "model_repository"
    code = main(["-q", "export", "--model", str(model_path), "--repository", str(repository),
                 "--name", "rs"])
    assert code == 0
    exported = torch.jit.load(str(repository / "rs" / "1" / "model.pt"))
    ids, mask = batch_encode(SEQUENCES)
    with torch.inference_mode():
        out = exported(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.abs(out - embedder.embed(SEQUENCES)).max() <= 1e-5
    assert (repository / "rs" / "config.pbtxt").is_file()
