"""Re-ranker calibration: the two fits, the model-file round trip, and the command."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.embedder.compact import DEFAULT_WEIGHTS, load_compact, update_compact_metadata

from rinalmo_search.cli import main
from rinalmo_search.evaluation.calibration import fit_gumbel, fit_merge
from rinalmo_search.rerank import (
    DEFAULT_CALIBRATION,
    LAMBDA,
    LOG_K,
    MERGE_COEFFICIENTS,
    REFERENCE_DB_RESIDUES,
    RerankCalibration,
    alignment_significance,
    merge_scores,
)


def test_gumbel_fit_recovers_lambda_and_k_of_simulated_scores() -> None:
    rng = np.random.default_rng(0)
    m = rng.integers(50, 300, 20000).astype(float)
    n = rng.integers(50, 300, 20000).astype(float)
    lam, log_k = 0.9, -2.5
    # S = (ln(K m n) + G) / lambda with G standard Gumbel: P(S >= x) = 1 - exp(-K m n e^-lx)
    scores = (log_k + np.log(m * n) + rng.gumbel(size=m.size)) / lam
    fitted_lam, fitted_log_k = fit_gumbel(scores, m, n)
    assert fitted_lam == pytest.approx(lam, rel=0.02)
    assert fitted_log_k == pytest.approx(log_k, abs=0.1)


def test_merge_fit_recovers_logistic_coefficients() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(0, 2, 50000), rng.normal(0, 1, 50000)])
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] + 0.5 * x[:, 1] - 1.0)))
    y = (rng.random(p.size) < p).astype(float)
    a, b, c = fit_merge(x, y)
    assert (a, b, c) == pytest.approx((1.5, 0.5, -1.0), abs=0.06)


def test_calibration_defaults_are_the_constants_and_round_trip() -> None:
    assert DEFAULT_CALIBRATION == RerankCalibration.from_metadata({})
    assert (DEFAULT_CALIBRATION.lambda_, DEFAULT_CALIBRATION.log_k) == (LAMBDA, LOG_K)
    assert DEFAULT_CALIBRATION.merge == MERGE_COEFFICIENTS
    other = RerankCalibration(0.9, -3.0, (2.0, 0.2, 0.1))
    assert RerankCalibration.from_metadata({"rerank": other.to_metadata()}) == other
    raw = np.array([10.0, 25.0, 40.0])
    log_e = math.log(math.exp(-2.72) * 100 * REFERENCE_DB_RESIDUES) - 0.955 * raw
    expected = -log_e / math.log(10)
    np.testing.assert_array_equal(alignment_significance(raw, 100), expected)
    assert not np.allclose(alignment_significance(raw, 100, other), expected)
    cosine = np.array([0.9, 0.5, 0.1])
    assert not np.allclose(merge_scores(expected, cosine, other), merge_scores(expected, cosine))


def test_calibration_is_stored_without_changing_the_vectors(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    shutil.copy(DEFAULT_WEIGHTS, path)
    sequences = ["ACGUACGGAUCCAUGAGGCUAGCUAGGAUC", "GGGAAACCCUUUAGCAUGCAUGCA"]
    before = load_compact(path)
    update_compact_metadata(path, {"rerank": RerankCalibration(0.9, -3.0, (2, 0.2, 0.1))
                                   .to_metadata()})
    after = load_compact(path)
    np.testing.assert_array_equal(after.embed(sequences), before.embed(sequences))
    assert after.metadata["split"] == before.metadata["split"]
    assert RerankCalibration.from_metadata(after.metadata).merge == (2.0, 0.2, 0.1)


def test_calibrate_command_writes_the_fit_into_the_model_file(
    prepared_subset: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "model.npz"
    shutil.copy(DEFAULT_WEIGHTS, path)
    assert main(["-q", "calibrate", "--split", str(prepared_subset), "--model", str(path),
                 "--queries-per-family", "2", "--top-k", "50", "--null-queries", "20",
                 "--null-targets", "20"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = load_compact(path).metadata["rerank"]
    assert stored == printed
    assert stored["null_pairs"] == 400 and stored["pairs"] > stored["positives"] > 0
    calibration = RerankCalibration.from_metadata(load_compact(path).metadata)
    assert 0.3 < calibration.lambda_ < 3 and calibration.merge[0] > 0  # alignment helps
    assert set(stored["validation_ap"]) == {"alignment", "embedding", "merged"}


def test_calibrate_command_errors(tmp_path: Path, capsys) -> None:
    assert main(["calibrate", "--split", str(tmp_path), "--model", "kmer"]) == 1
    assert "has no model file to write into" in capsys.readouterr().err
    assert main(["calibrate", "--split", str(tmp_path), "--model", "kmer", "--top-k", "0"]) == 1
    assert "Invalid '--top-k' value: 0" in capsys.readouterr().err


def test_calibration_is_stored_in_a_trainer_model_file(tmp_path: Path) -> None:
    import torch
    from rinalmo_search.embedder.head import HeadConfig, HomologyHead
    from rinalmo_search.embedder.model_file import (
        load_model_file,
        save_model_file,
        update_model_metadata,
    )

    torch.manual_seed(0)
    head = HomologyHead(HeadConfig(input_dim=256, hidden_dim=32, output_dim=16, num_blocks=1,
                                   num_heads=2, ffn_dim=64, dropout=0.0)).eval()
    path = save_model_file(tmp_path / "head.pt", name="h", version="1", backbone=None, head=head,
                           features={"kind": "kmer", "k": 4}, metadata={"split": "s"})
    before = load_model_file(path)
    update_model_metadata(path, {"rerank": RerankCalibration(0.9, -3.0, (2, 0.2, 0.1))
                                 .to_metadata()})
    after = load_model_file(path)
    assert after.metadata["split"] == "s"
    assert RerankCalibration.from_metadata(after.metadata).lambda_ == 0.9
    for key, value in before.head_state.items():
        assert torch.equal(value, after.head_state[key])
