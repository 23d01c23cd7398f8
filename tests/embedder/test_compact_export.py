"""The compact default model in torch: same vectors as the numpy path, scripted, exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rinalmo_search.embedder import load_embedder
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.compact import DEFAULT_WEIGHTS, CompactConfig, CompactEmbedder
from rinalmo_search.embedder.compact_torch import to_torch_module
from rinalmo_search.embedder.export import export_module, script_module

from rinalmo_search.cli import main

TOLERANCE = 1e-5


def _varied_sequences(seed: int) -> list[str]:
    """Lower/upper case, U and T, IUPAC codes, N runs, unknown characters, lengths 1..1500."""
    rng = np.random.default_rng(seed)
    letters = list("ACGUacgutTRYKMSWBDHVNn-")
    weights = np.array([8, 8, 8, 8, 3, 3, 3, 3, 2, 2] + [0.3] * 13)
    fixed = [
        "A", "u", "GC", "ACG", "ACGU", "acgu" + "N", "ACGUA", "ACGUAC", "ACGUACG", "ACGUACGU",
        "NNNNNNNNNNNN", "RYKMSWBDHVN", "ACGUNACGUNACGUNACGUN", "acguACGTacgtACGU" * 5,
        "GGGAGCUCAGCCGGUAGAGCAAGCGGCUAGCUCCC", "ACGU?ACGU*ACGUxACGU", "AC GU\u00e9ACGUACGU",
    ]  # fmt: skip
    lengths = [1, 2, 4, 5, 7, 8, 9, 33, 120, 400, 999, 1500]
    drawn = [
        "".join(rng.choice(letters, size=n, p=weights / weights.sum())) for n in lengths
    ]
    return fixed + drawn


def _torch_embed(module: torch.nn.Module, sequences: list[str]) -> np.ndarray:
    ids, mask = batch_encode(sequences)
    with torch.inference_mode():
        return module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()


@pytest.fixture(scope="module")
def shipped() -> CompactEmbedder:
    embedder = load_embedder("compact-kmer")
    assert isinstance(embedder, CompactEmbedder)
    return embedder


def test_torch_module_matches_numpy_embed(shipped: CompactEmbedder) -> None:
    sequences = _varied_sequences(0)
    expected = shipped.embed(sequences)
    module = to_torch_module(shipped)
    got = _torch_embed(module, sequences)
    assert got.shape == expected.shape == (len(sequences), 512)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= TOLERANCE
    # sequences with no complete k-mer give zero vectors on both paths, the others unit rows
    norms = np.linalg.norm(got, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))
    assert norms[0] == 0 and norms[-1] > 0.99


def test_padding_and_batching_do_not_change_vectors(shipped: CompactEmbedder) -> None:
    sequences = _varied_sequences(1)[10:]
    module = to_torch_module(shipped)
    one_by_one = np.concatenate([_torch_embed(module, [s]) for s in sequences])
    ids, mask = batch_encode(sequences, pad_to=1600)
    ids[mask == 0] = 7  # a 'G' under the mask must not count: the mask decides
    with torch.inference_mode():
        padded = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.abs(one_by_one - padded).max() <= TOLERANCE
    assert np.abs(one_by_one - shipped.embed(sequences)).max() <= TOLERANCE


@pytest.mark.parametrize("learned_dim", [0, 96])
def test_other_configs_match(learned_dim: int) -> None:
    config = CompactConfig(patterns=["111", "1101", "10011"], block_weights=[0.5, 1.0, 2.0],
                           dim=160, learned_dim=learned_dim, learned_weight=0.3, seed=3)
    rng = np.random.default_rng(2)
    n_features = 64 + 64 + 64
    learned = rng.standard_normal((n_features, learned_dim)).astype(np.float32) \
        if learned_dim else None
    embedder = CompactEmbedder(config, learned)
    sequences = _varied_sequences(2)
    got = _torch_embed(script_module(embedder), sequences)
    assert got.shape == (len(sequences), 160)
    assert np.abs(got - embedder.embed(sequences)).max() <= TOLERANCE


def test_scripted_matches_eager(shipped: CompactEmbedder) -> None:
    sequences = _varied_sequences(3)
    eager = export_module(shipped)
    scripted = script_module(shipped)
    assert isinstance(scripted, torch.jit.ScriptModule)
    assert np.abs(_torch_embed(eager, sequences) - _torch_embed(scripted, sequences)).max() \
        <= TOLERANCE
    # no frozen shape: a longer batch than any seen above works too
    long = ["ACGU" * 600]
    assert np.abs(_torch_embed(scripted, long) - shipped.embed(long)).max() <= TOLERANCE


@pytest.mark.parametrize("model", ["compact-kmer", "file"])
def test_export_command_on_the_shipped_model(tmp_path: Path, shipped: CompactEmbedder,
                                             model: str) -> None:
    if model == "file":
        copy = tmp_path / "compact-copy.npz"
        copy.write_bytes(DEFAULT_WEIGHTS.read_bytes())
        model = str(copy)
    repository = tmp_path / "model_repository"
    code = main(["-q", "export", "--model", model, "--repository", str(repository)])
    assert code == 0
    exported = torch.jit.load(str(repository / "rinalmo_search" / "1" / "model.pt"))
    sequences = _varied_sequences(4)
    assert np.abs(_torch_embed(exported, sequences) - shipped.embed(sequences)).max() \
        <= TOLERANCE
    config = (repository / "rinalmo_search" / "config.pbtxt").read_text()
    assert 'string_value: "compact-kmer"' in config
    assert f'string_value: "{shipped.info.version}"' in config
    assert 'key: "max_length" value: { string_value: "4096" }' in config
    assert (repository / "rinalmo_search_text" / "config.pbtxt").is_file()

