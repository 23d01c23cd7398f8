"""``rinalmo-search embed`` and ``weights`` on official-layout checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from embedder_testkit import SEQUENCES
from rinalmo_reference import reference_pooled
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import TorchEmbedder
from rinalmo_search.embedder.model_file import save_model_file
from rinalmo_search.embedder.pretrained import load_backbone

from rinalmo_search.cli import main


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    path = tmp_path / "in.fasta"
    records = [f">r{i} some description\n{seq[:10]}\n{seq[10:]}\n" for i, seq in
               enumerate(SEQUENCES)]
    path.write_text("".join(records) + f">r0 repeated\n{SEQUENCES[0]}\n")
    return path


def test_embed_backbone_features_match_reference(
    tmp_path: Path, fasta: Path, micro_checkpoint: Path
) -> None:
    out = tmp_path / "features.npy"
    ids_file = tmp_path / "ids.txt"
    code = main(["-q", "embed", str(fasta), "--checkpoint", str(micro_checkpoint),
                 "--features", "backbone", "--out", str(out), "--ids", str(ids_file),
                 "--threads", "1"])
    assert code == 0
    features = np.load(out)
    assert features.shape == (len(SEQUENCES) + 1, 480) and features.dtype == np.float32
    assert ids_file.read_text().split() == [f"r{i}" for i in range(len(SEQUENCES))] + ["r0"]
    state = torch.load(micro_checkpoint, weights_only=True)
    tokens, _ = batch_encode(SEQUENCES + SEQUENCES[:1])
    with torch.no_grad():
        expected = reference_pooled(state, torch.from_numpy(tokens)).numpy()
    assert np.abs(features - expected).max() <= 1e-5


def test_embed_head_with_model_file(tmp_path: Path, fasta: Path, micro_checkpoint: Path) -> None:
    torch.manual_seed(1)
    head = HomologyHead(HeadConfig(input_dim=480, num_blocks=1)).eval()
    model = save_model_file(tmp_path / "model.pt", name="m", version="1",
                            backbone=load_backbone(micro_checkpoint).config, head=head,
                            backbone_source=str(micro_checkpoint))
    out = tmp_path / "emb.npy"
    assert main(["-q", "embed", str(fasta), "--model", str(model), "--out", str(out)]) == 0
    vectors = np.load(out)
    expected = TorchEmbedder.from_model_file(model, progress=False).embed(
        SEQUENCES + SEQUENCES[:1])
    assert vectors.shape == (len(SEQUENCES) + 1, 512)
    assert np.abs(vectors - expected).max() <= 1e-6


def test_embed_backbone_needs_a_checkpoint(
    tmp_path: Path, fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["embed", str(fasta), "--features", "backbone", "--out", str(tmp_path / "x.npy")])
    assert code == 1
    assert "--features backbone needs --checkpoint" in capsys.readouterr().err


def test_embed_missing_weights_name(
    tmp_path: Path, fasta: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RINALMO_SEARCH_WEIGHTS_DIR", str(tmp_path / "w"))
    code = main(["embed", str(fasta), "--checkpoint", "micro", "--features", "backbone",
                 "--out", str(tmp_path / "x.npy")])
    assert code == 1
    err = capsys.readouterr().err
    assert "weights download micro" in err and str(tmp_path / "w") in err


def test_weights_path_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINALMO_SEARCH_WEIGHTS_DIR", str(tmp_path))
    assert main(["weights", "path", "giga"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "rinalmo_giga_pretrained.pt")
    (tmp_path / "rinalmo_micro_pretrained.pt").write_bytes(b"x")
    assert main(["weights", "list"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[2:]]
    assert {row[0]: row[2] for row in rows} == {"giga": "no", "mega": "no", "micro": "yes"}
