"""``rinalmo-search evaluate`` end to end on real Rfam families, with real peer tools."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from evaluation_helpers import synthetic_records

from rinalmo_search.cli import main
from rinalmo_search.evaluation.protocol import ToolRun, score_run
from rinalmo_search.evaluation.report import markdown
from rinalmo_search.evaluation.runner import evaluate
from rinalmo_search.evaluation.split import RetrievalSet, load_retrieval_set


@pytest.mark.slow
def test_evaluate_cli_end_to_end(prepared_subset: Path, tmp_path: Path, capsys) -> None:
    for tool in ("blastn", "makeblastdb", "nhmmer"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian packages ncbi-blast+ and hmmer)")
    split_dir = prepared_subset
    split = load_retrieval_set(split_dir)
    expected_queries = split.queries("test")
    code = main([
        "-q", "evaluate", "--split", str(split_dir), "--model", "kmer", "--rerank", "sw,none",
        "--peers", "blastn,nhmmer", "--out-json", str(tmp_path / "r.json"),
        "--out-md", str(tmp_path / "r.md"),
    ])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [t["name"] for t in report["tools"]] == ["kmer+sw+prf", "kmer", "blastn", "nhmmer"]
    assert report["queries"] == len(expected_queries)
    assert report["database"] == len(split.records)
    for tool in report["tools"]:
        overall = tool["metrics"]["all"]
        assert overall["families"] == len({q.family for q in expected_queries})
        for metric in ("ap", "precision", "recall", "f1", "recall_at_r", "sens_first_fp",
                       "p_at_10"):
            assert 0.0 <= overall[metric] <= 1.0, (tool["name"], metric, overall[metric])
        assert tool["seconds_per_query"] > 0
    ours = report["tools"][0]
    assert ours["threshold"] is not None and math.isfinite(ours["threshold"])
    assert report["tools"][2]["threshold"] is None  # peers: everything at E <= 1e-3
    markdown = (tmp_path / "r.md").read_text()
    assert markdown == capsys.readouterr().out
    for name in ("kmer+sw+prf", "blastn", "nhmmer"):
        assert f"| {name} |" in markdown


def test_protocol_scores_a_known_ranking() -> None:
    records = synthetic_records()
    sides = ("test", "validation", "train", "train")
    split = RetrievalSet(records, {r.family: sides[int(r.family[2:]) % 4] for r in records})
    queries = split.queries("test")
    by_family: dict[str, list[str]] = {}
    for record in split.records:
        by_family.setdefault(record.family, []).append(record.id)
    decoy = next(r.id for r in split.records if split.family_split[r.family] == "train"
                 and not r.clan)
    # each query: itself, one decoy, then all its family-mates → AP = mean_k k/(k+1)
    hits = {}
    for query in queries:
        mates = [i for i in by_family[query.family] if i != query.id]
        hits[query.id] = [(query.id, 1.0), (decoy, 0.9)] + [(m, 0.5) for m in mates]
    run = ToolRun("by-hand", hits, {"search": 1.0}, len(queries), 1, threshold=0.7)
    summary = score_run(run, queries, split)
    expected = []
    for family in sorted({q.family for q in queries}):
        n = len(by_family[family]) - 1
        expected.append(sum(k / (k + 1) for k in range(1, n + 1)) / n)
    assert summary["all"]["ap"] == pytest.approx(sum(expected) / len(expected))
    assert summary["all"]["sens_first_fp"] == 0.0
    assert summary["all"]["precision"] == 0.0  # only the decoy scores >= 0.7


def test_evaluate_cli_reports_a_bad_split(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--split", str(tmp_path / "nope")]) == 1
    assert "split folder not found" in capsys.readouterr().err
    assert main(["evaluate", "--split", str(tmp_path), "--rerank", "blast"]) == 1
    assert "Invalid re-ranking method: 'blast'" in capsys.readouterr().err


def test_evaluation_report_says_the_model_was_trained_on_another_split(
    prepared_subset: Path,
) -> None:
    # the shipped model records the split it was trained on (ad350203bb31); this one differs
    split = load_retrieval_set(prepared_subset)
    report = evaluate(split, models=["compact-kmer"], reranks=["none"], peers=[],
                      max_queries_per_family=1, max_validation_queries_per_family=1)
    (warning,) = report["warnings"]
    assert "compact-kmer was trained on split ad350203bb31" in warning
    assert split.fingerprint[:12] in warning
    assert f"**Warning:** {warning}" in markdown(report)
