"""The training loop end to end: a tiny CPU run learns, a killed run resumes, DDP on gloo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rinalmo_search.training.config import TrainConfig, load_config
from rinalmo_search.training.features import FeatureCache, build_extractor
from rinalmo_search.training.prepare import PrepareOptions, load_split, prepare_dataset
from rinalmo_search.training.trainer import lr_factor, train

from rinalmo_search.errors import ConfigError
from rinalmo_search.evaluation.metrics import leave_one_out_metrics

#: A small head on 4-mer composition features: trains in seconds on one core.
TINY = {
    "features": {"extractor": "kmer", "options": {"k": 4}},
    "head": {"hidden_dim": 64, "output_dim": 32, "num_blocks": 1, "num_heads": 4,
             "ffn_dim": 128, "dropout": 0.1},
    "sampler": {"families_per_batch": 8, "per_family": 4, "hard_negatives": 2},
    "optim": {"lr": 1e-3},
    "epochs": 12,
    "num_threads": 1,
    "progress": False,
}


def write_config(folder: Path, split: Path, out: str, suffix: str = ".yaml", **changes) -> Path:
    values = {**TINY, "split_dir": str(split), "output_dir": out, **changes}
    path = folder / f"train-{out}{suffix}"
    if suffix == ".toml":
        lines = []
        for key, value in values.items():
            if not isinstance(value, dict):
                lines.append(f"{key} = {json.dumps(value)}")
        for key, value in values.items():
            if isinstance(value, dict):
                lines.append(f"[{key}]")
                for inner, item in value.items():
                    if isinstance(item, dict):
                        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in item.items())
                        item = "{ " + pairs + " }"
                    else:
                        item = json.dumps(item)
                    lines.append(f"{inner} = {item}")
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(yaml.safe_dump(values))
    return path


def read_metrics(path: Path) -> list[dict[str, float]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, map(float, line.split("\t")), strict=True)) for line in lines[1:]]


@pytest.fixture(scope="module")
def single_run(train_split: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("single")
    config = load_config(write_config(folder, train_split, "run"))
    return config, train(config)


def test_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(step, 100, 10) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert lr_factor(100, 100, 10) == pytest.approx(0.0)


def test_tiny_run_lowers_validation_loss_and_improves_retrieval(single_run) -> None:
    config, result = single_run
    history = result.history
    untrained, best = history[0], history[result.best_epoch]
    print("epoch val_loss val_map:", [(int(h["epoch"]), round(h["val_loss"], 4),
                                      round(h["val_map"], 4)) for h in history])
    assert len(history) == 13 and result.best_epoch >= 1
    assert best["val_loss"] < untrained["val_loss"]
    assert best["val_map"] > untrained["val_map"]
    assert history[-1]["train_loss"] < history[1]["train_loss"]
    rows = read_metrics(config.output_dir / "metrics.tsv")
    assert [int(r["epoch"]) for r in rows] == list(range(13))
    assert rows[-1]["val_loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-5)


def test_model_file_records_config_split_and_reproduces_metrics(single_run, train_split) -> None:
    from rinalmo_search.embedder.model_file import load_model_file

    config, result = single_run
    model = load_model_file(result.model_path)
    split = load_split(train_split)
    meta = model.metadata
    assert meta["split"]["fingerprint"] == split.fingerprint
    assert meta["split"]["families"]["validation"] == sorted(
        f for f, s in split.family_split.items() if s == "validation")
    assert meta["training"]["temperature"] == 0.1 and meta["best_epoch"] == result.best_epoch
    assert TrainConfig.model_validate(meta["training"]).fingerprint() == config.fingerprint()
    assert meta["features"] == {"name": "kmer4", "dim": 256, "kind": "kmer", "k": 4}
    # the stored head gives the validation retrieval recorded for its epoch
    head = model.build_head()
    records = split.records["validation"]
    features = FeatureCache(train_split / "features", build_extractor("kmer", k=4),
                            f"split-{split.fingerprint[:16]}").get(
        [r.sequence for r in records], progress=False)
    with torch.no_grad():
        vectors = head(torch.from_numpy(features)).numpy()
    metrics = leave_one_out_metrics(vectors, [r.family for r in records],
                                [split.families[r.family].clan for r in records])
    assert metrics["map"] == pytest.approx(result.history[result.best_epoch]["val_map"], abs=1e-5)


def test_killed_run_resumes_where_it_stopped(single_run, train_split, tmp_path) -> None:
    """Kill a CLI run after its second epoch; rerunning completes it with the same numbers as
    an uninterrupted run of the same config."""
    _, uninterrupted = single_run
    config = write_config(tmp_path, train_split, "killed", epochs=12)
    command = [sys.executable, "-m", "rinalmo_search", "train", "--config", str(config),
               "--no-progress"]
    metrics = tmp_path / "killed" / "metrics.tsv"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:  # epochs 0-2
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    killed_at = len(read_metrics(metrics)) - 1
    assert 2 <= killed_at < 12
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    rows = read_metrics(metrics)
    assert [int(r["epoch"]) for r in rows] == list(range(13))
    expected = uninterrupted.history
    for row, reference in zip(rows, expected, strict=True):
        assert row["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-4)


def test_torchrun_two_processes_on_gloo(single_run, train_split, tmp_path) -> None:
    """Two CPU processes with DDP: disjoint batches (half the steps per epoch each), and a
    validation loss curve that falls like the single-process one."""
    _, single = single_run
    config = write_config(tmp_path, train_split, "ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "rinalmo_search", "train", "--config",
               str(config), "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=480,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(tmp_path / "ddp" / "metrics.tsv")
    print("ddp val_loss:", [round(r["val_loss"], 4) for r in rows])
    print("one val_loss:", [round(r["val_loss"], 4) for r in single.history])
    assert [int(r["epoch"]) for r in rows] == list(range(13))
    steps_one = int(single.history[1]["step"])
    assert int(rows[1]["step"]) == steps_one // 2
    assert rows[0]["val_loss"] == pytest.approx(single.history[0]["val_loss"], rel=1e-5)
    assert min(r["val_loss"] for r in rows[1:]) < rows[0]["val_loss"]
    # same shape: both curves end below where they started, and they are correlated
    one = np.array([h["val_loss"] for h in single.history])
    two = np.array([r["val_loss"] for r in rows])
    assert two[-1] < two[0] and one[-1] < one[0]
    assert np.corrcoef(one, two)[0, 1] > 0.5


def test_rinalmo_features_train_and_load_in_the_torch_embedder(shared_rfam, tmp_path) -> None:
    """Frozen RiNALMo-nano (random weights) features → head → model file → TorchEmbedder."""
    from rinalmo_search.embedder.local import TorchEmbedder

    split_dir = tmp_path / "split"
    prepare_dataset(shared_rfam, split_dir, PrepareOptions(
        families=["RF00048", "RF00051", "RF00094", "RF00016", "RF00041", "RF00042"],
        fractions=(0.5, 0.5, 0.0), dedup="exact", seed=1,
    ))
    config = load_config(write_config(
        tmp_path, split_dir, "rna", epochs=2,
        features={"extractor": "rinalmo", "options": {"preset": "nano", "seed": 3}},
        sampler={"families_per_batch": 2, "per_family": 4, "hard_negatives": 0},
    ))
    result = train(config)
    assert len(result.history) == 3
    path = config.output_dir / "model.pt"
    if result.model_path is None:  # validation loss never improved: nothing to load
        pytest.fail(f"no model file: {result.history}")
    embedder = TorchEmbedder.from_model_file(path, threads=1)
    records = load_split(split_dir).records["validation"][:6]
    vectors = embedder.embed([r.sequence for r in records])
    features = RinalmoCache = FeatureCache(  # noqa: F841 - the cache the run filled
        split_dir / "features", build_extractor("rinalmo", preset="nano", seed=3),
        f"split-{load_split(split_dir).fingerprint[:16]}",
    ).get([r.sequence for r in records], progress=False)
    with torch.no_grad():
        expected = embedder.head(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(vectors, expected, atol=1e-4)


def test_config_files_yaml_and_toml_agree_and_errors_name_the_field(train_split, tmp_path):
    a = load_config(write_config(tmp_path, train_split, "x"))
    b = load_config(write_config(tmp_path, train_split, "x", suffix=".toml"))
    assert a == b
    assert a.output_dir == (tmp_path / "x").resolve()  # relative to the config file
    assert a.optim.betas == (0.9, 0.999) and a.optim.weight_decay == 0.05
    bad = write_config(tmp_path, train_split, "y", temperature=-1)
    with pytest.raises(ConfigError, match=r"temperature: .*greater than 0 \(found -1\)"):
        load_config(bad)
    unknown = write_config(tmp_path, train_split, "z", learning_rate=0.1)
    with pytest.raises(ConfigError, match="learning_rate: Extra inputs are not permitted"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        cpu_fp16 = load_config(write_config(tmp_path, train_split, "w", amp="fp16",
                                            device="cpu"))
        train(cpu_fp16)


def test_lora_fine_tuning_with_bf16_autocast(single_run, train_split, tmp_path) -> None:
    """LoRA adapters on a trained head (bf16 autocast on CPU): only the adapters train, and
    the saved model file holds merged plain weights that differ from the starting head."""
    from rinalmo_search.embedder.model_file import load_model_file

    _, base = single_run
    config = load_config(write_config(
        tmp_path, train_split, "lora", epochs=3, amp="bf16", init_from=str(base.model_path),
        lora={"enabled": True, "r": 4, "alpha": 8}, optim={"lr": 1e-2},
    ))
    result = train(config)
    assert all(np.isfinite(h["val_loss"]) for h in result.history)
    start = load_model_file(base.model_path).head_state
    assert result.history[0]["val_loss"] == pytest.approx(
        base.history[base.best_epoch]["val_loss"], rel=2e-2)  # bf16 on the same head
    if result.model_path is None:
        pytest.fail(f"LoRA never improved the validation loss: {result.history}")
    tuned = load_model_file(result.model_path).head_state
    assert set(tuned) == set(start), "LoRA keys leaked into the model file"
    changed = [k for k in start if not torch.equal(start[k], tuned[k])]
    assert changed and all(k.endswith("weight") for k in changed)
    # LayerNorms and biases are not adapted: they stay as they were
    assert torch.equal(start["final_norm.weight"], tuned["final_norm.weight"])


@pytest.mark.parametrize(("name", "lr"), [("rinalmo-giga.yaml", 1e-4), ("kmer4-cpu.toml", 1e-4),
                                          ("rinalmo-micro-random-cpu.toml", 3e-4)])
def test_shipped_example_configs_validate(name: str, lr: float) -> None:
    path = Path(__file__).resolve().parents[2] / "training" / "configs" / name
    config = load_config(path)
    assert config.temperature == 0.1 and config.optim.lr == lr
    assert config.split_dir.is_absolute() and config.split_dir.name == "split"
