"""The benchmark: ``bench/run.py --quick`` end to end (report structure), and its helpers.

The quick run uses the real tools (BLASTn, MMseqs2, nhmmer, Infernal), Milvus Lite and the
shared Rfam seeds; it checks what the report contains, not the numbers.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rinalmo_search.evaluation.metrics import METRICS, QueryResult
from rinalmo_search.evaluation.peers import SINGLE_CM, parse_cmsearch_tblout
from rinalmo_search.evaluation.split import load_retrieval_set
from rinalmo_search.seqio import SequenceRecord

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import quality  # noqa: E402
import report  # noqa: E402
import run as bench_run  # noqa: E402
import scaling  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench_split(tmp_path_factory: pytest.TempPathFactory, shared_rfam: Path) -> Path:
    """A split written by ``data prepare`` (exact de-dup, 60/20/20) of 40 real families with
    10-60 seed sequences of median length 60-200 nt."""
    from rinalmo_search.training.prepare import PrepareOptions, prepare_dataset

    with (shared_rfam / "families.tsv").open() as handle:
        families = [row["accession"] for row in csv.DictReader(handle, delimiter="\t")
                    if 10 <= int(row["n_seq_kept"]) <= 60 and 60 <= float(row["median_len"]) <= 200]
    out = tmp_path_factory.mktemp("bench-split") / "split"
    prepare_dataset(shared_rfam, out, PrepareOptions(
        dedup="exact", families=sorted(families)[:40], fractions=(0.6, 0.2, 0.2), seed=0))
    return out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, shared_rfam: Path,
              bench_split: Path) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out),
         "--rfam", str(shared_rfam), "--split", str(bench_split)],
        capture_output=True, text=True, timeout=1500, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_quick_run_writes_scaling_rows_for_every_tool_and_size(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    scale = results["scaling"]
    tools = {row["tool"] for row in scale["rows"]}
    assert {"blastn", "mmseqs", "kmer", "kmer+sw"} <= tools
    for tool in tools:
        sizes = sorted(row["size"] for row in scale["rows"] if row["tool"] == tool)
        assert sizes == scale["sizes"]
    for row in scale["rows"]:
        assert 1 <= row["n_queries"] <= scale["n_queries"]
        assert 0 < row["p50"] <= row["p95"]
        assert row["index_seconds"] >= 0
        assert row["ratio_to_blastn_p50"] > 0
    assert all(r["ratio_to_blastn_p50"] == pytest.approx(1.0) for r in scale["rows"]
               if r["tool"] == "blastn")
    assert set(scale["exponents"]) == tools
    assert all(isinstance(e["p50"], float) for e in scale["exponents"].values())


def test_quick_run_scores_every_tool_with_every_metric(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    qual = results["quality"]
    tools = [run["tool"] for run in qual["runs"]]
    assert {"kmer", "kmer+sw", "blastn", "nhmmer", "mmseqs", SINGLE_CM} <= set(tools)
    for run in qual["runs"]:
        assert set(run["metrics"]) == {"all", "<20", "20-99", ">=100"}
        assert set(METRICS) <= set(run["metrics"]["all"])
        assert 0.0 <= run["metrics"]["all"]["ap"] <= 1.0
        curve = qual["pr_curves"][run["tool"]]
        assert len(curve["precision"]) == len(curve["recall"])
    assert qual["subset"]["queries"] >= 1
    assert {row["tool"] for row in qual["subset"]["rows"]} == set(tools)
    assert qual["meta"]["queries"] > 0 and qual["meta"]["database"] > qual["meta"]["queries"]


def test_quick_run_writes_report_and_plots(quick_run: Path) -> None:
    text = (quick_run / "report.md").read_text()
    for heading in ("## Speed and scaling", "## Retrieval quality", "### All test families",
                    "### cmsearch subset", "## Plots", "## Not measured"):
        assert heading in text
    assert "| tool | DB size | n | p50 ms | p95 ms | p50 / BLASTn |" in text
    assert "not measured in this run" in text  # quick sizes are far below 1M
    # the shipped model was trained on another split: the report says so
    assert "**Warning:** compact-kmer was trained on split ad350203bb31" in text
    for name in ("pr_curves.png", "latency_vs_size.png", "embedding_map.png"):
        data = (quick_run / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name


def test_growth_exponent_recovers_the_power_law() -> None:
    sizes = [1_000, 10_000, 100_000]
    assert scaling.growth_exponent(sizes, [2e-3 * s for s in sizes]) == pytest.approx(1.0)
    assert scaling.growth_exponent(sizes, [s**0.5 for s in sizes]) == pytest.approx(0.5)
    assert scaling.growth_exponent([1_000], [1.0]) is None


def test_nested_databases_are_prefixes_holding_the_queries() -> None:
    records = [SequenceRecord(id=f"s{i}", sequence="ACGU" * 10, family=f"F{i % 3}")
               for i in range(50)]
    database, queries = scaling.nested_databases(records, 120, n_queries=5, seed=3)
    assert len(database) == 120 and len({r.id for r in database}) == 120
    assert {q.id for q in queries} <= {r.id for r in database[:50]}
    assert all(r.family for r in database[50:])  # copies keep their source's family


def test_pooled_pr_curve_counts_unfound_positives() -> None:
    results = [QueryResult("q", "F", np.array([1, 0, 1], dtype=np.int8),
                           np.array([3.0, 2.0, 1.0]), n_pos=4)]
    curve = quality.pooled_pr_curve(results)
    assert curve["precision"] == pytest.approx([1.0, 0.5, 2 / 3], abs=1e-4)
    assert curve["recall"] == pytest.approx([0.25, 0.25, 0.5])


def test_parse_tblout_reads_target_bits_and_evalue() -> None:
    line = ("t3 - query - cm 1 80 5 90 + no 1 0.45 0.0 61.2 2.1e-12 ! -\n")
    assert parse_cmsearch_tblout("# header\n" + line) == [("t3", 61.2, 2.1e-12)]


def test_run_refuses_the_quality_section_without_a_prepared_split(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--quick"])
    assert "--split DIR is needed for the quality section" in capsys.readouterr().err
    assert bench_run.parse_args(["--quick", "--skip-quality"]).split is None


def test_quality_report_warns_when_a_model_was_trained_on_another_split(
    bench_split: Path,
) -> None:
    split = load_retrieval_set(bench_split)
    setup = quality.prepare(split, families=2, queries_per_family=1, db_size=300)
    result = quality.run_quality(setup, models=["compact-kmer", "kmer"], peers=[],
                                 reranks=("none",))
    (warning,) = result.meta["warnings"]  # kmer is untrained: nothing to say
    assert "compact-kmer was trained on split ad350203bb31" in warning
    assert split.fingerprint[:12] in warning
    text = "\n".join(report.quality_markdown({"meta": result.meta, "runs": result.runs}))
    assert f"**Warning:** {warning}" in text


def test_merge_unites_sections_and_drops_stale_skip_notes() -> None:
    a = {"date": "d", "quick": False, "command": "a", "machine": {}, "scaling": {"x": 1},
         "plots": {"latency_vs_size.png": "l"}, "limits": ["Quality section skipped (...)."]}
    b = {"date": "d2", "quick": False, "command": "b", "machine": {}, "quality": {"y": 2},
         "plots": {"pr_curves.png": "p"}, "limits": ["Scaling section skipped (...).", "z"]}
    merged = report.merge([a, b])
    assert merged["scaling"] == {"x": 1} and merged["quality"] == {"y": 2}
    assert merged["limits"] == ["z"]
    assert set(merged["plots"]) == {"latency_vs_size.png", "pr_curves.png"}


def test_merge_takes_missing_scaling_rows_from_the_second_run() -> None:
    def row(tool: str, size: int, p50: float) -> dict:
        return {"tool": tool, "size": size, "p50": p50, "p95": p50, "index_seconds": 1.0,
                "n_queries": 2, "details": {}}

    base = {"date": "d", "quick": False, "command": "a", "machine": {}, "plots": {},
            "limits": []}
    a = dict(base, scaling={"sizes": [10, 100], "rows": [row("blastn", 10, 1.0),
                                                          row("blastn", 100, 10.0)],
                            "skipped": {"mmseqs at 10": "killed"}, "exponents": {}})
    b = dict(base, scaling={"sizes": [10, 100], "rows": [row("blastn", 10, 5.0),
                                                          row("mmseqs", 10, 2.0),
                                                          row("mmseqs", 100, 2.0)],
                            "skipped": {}, "exponents": {}})
    merged = report.merge([a, b])["scaling"]
    assert [r["p50"] for r in merged["rows"] if r["tool"] == "blastn"] == [1.0, 10.0]
    assert merged["exponents"]["blastn"]["p50"] == pytest.approx(1.0)
    assert merged["exponents"]["mmseqs"]["p50"] == pytest.approx(0.0)
    assert merged["skipped"] == {}
