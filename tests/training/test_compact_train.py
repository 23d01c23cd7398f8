"""``train`` with a ``kind = "compact"`` config: the compact model's learned view, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.embedder.compact import load_compact
from rinalmo_search.training.config import CompactTrainConfig, load_config
from rinalmo_search.training.prepare import load_split

from rinalmo_search.cli import main
from rinalmo_search.errors import ConfigError
from rinalmo_search.simulate import diverge

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "training" / "configs" / "compact-kmer.toml"


def _config(tmp_path: Path, split: Path) -> Path:
    path = tmp_path / "compact.toml"
    path.write_text(
        'kind = "compact"\n'
        f'split_dir = "{split}"\noutput_dir = "run"\n'
        'patterns = ["111", "11011"]\nblock_weights = [1.0, 1.0]\nlearned_dim = 8\n'
        "steps = 6\neval_every = 3\neval_queries_per_family = 2\nmixes = [0.25, 0.5]\n"
        "warmup_steps = 2\n[sampler]\nfamilies_per_batch = 4\nper_family = 2\n"
        "hard_negatives = 0\n"
    )
    return path


def test_train_command_writes_a_reproducible_compact_model(tiny_split: Path,
                                                           tmp_path: Path) -> None:
    config = _config(tmp_path, tiny_split)
    assert main(["-q", "train", "--config", str(config)]) == 0
    first = tmp_path / "run" / "model.npz"
    model = load_compact(first)
    assert model.config.learned_dim == 8 and model.config.learned_weight in (0.25, 0.5)
    prepared = load_split(tiny_split)
    assert model.metadata["split"]["fingerprint"] == prepared.fingerprint
    assert model.metadata["split"]["families"]["train"] == sorted(
        f for f, s in prepared.family_split.items() if s == "train")
    assert model.metadata["training"]["steps"] == 6
    table = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert [(row["step"], row["learned_weight"]) for row in table] == [
        (0, 0.0), (0, 0.25), (0, 0.5), (3, 0.25), (3, 0.5), (6, 0.25), (6, 0.5)]
    best = max(row["ap_all"] for row in table if row["learned_weight"] > 0)
    assert model.metadata["validation_ap"] == pytest.approx(best, abs=1e-4)
    # the same config trains the same weights (one thread, seeded sampling and augmentation)
    assert main(["-q", "train", "--config", str(config), "--output-dir",
                 str(tmp_path / "again")]) == 0
    again = load_compact(tmp_path / "again" / "model.npz")
    sequences = ["ACGUACGGAUCCAUGAGGCUA", "GGGAAACCCUUUAGCAUGC"]
    np.testing.assert_array_equal(model.embed(sequences), again.embed(sequences))


def test_shipped_compact_config_is_the_shipped_models_recipe() -> None:
    config = load_config(SHIPPED)
    assert isinstance(config, CompactTrainConfig)
    shipped = load_compact()
    assert config.patterns == shipped.config.patterns
    assert config.block_weights == shipped.config.block_weights
    assert config.learned_dim == shipped.config.learned_dim
    assert shipped.config.learned_weight in config.mixes
    assert (config.name, config.version) == (shipped.info.name, shipped.info.version)


def test_compact_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('kind = "compact"\nsplit_dir = "s"\noutput_dir = "o"\n'
                    'patterns = ["111"]\nblock_weights = [1.0, 2.0]\n')
    with pytest.raises(ConfigError, match="2 block_weights for 1 patterns"):
        load_config(path)
    path.write_text('kind = "compact"\nsplit_dir = "s"\noutput_dir = "o"\nepochs = 3\n')
    with pytest.raises(ConfigError, match="epochs"):
        load_config(path)


def test_diverge_draws_its_own_rates_and_keeps_the_alphabet() -> None:
    rng = np.random.default_rng(0)
    source = "".join(rng.choice(list("ACGU"), size=400))
    assert diverge(source, rng, max_substitution=0.0, max_indel=0.0) == source
    copies = [diverge(source, rng, max_substitution=0.25, max_indel=0.05) for _ in range(20)]
    assert all(set(c) <= set("ACGU") for c in copies)
    identities = [np.mean([a == b for a, b in zip(source, c, strict=False)]) for c in copies]
    assert len(set(identities)) > 10  # each copy its own divergence
    assert all(0.8 * len(source) < len(c) < 1.2 * len(source) for c in copies)
