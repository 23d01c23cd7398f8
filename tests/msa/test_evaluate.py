"""evaluate-msa on two small Rfam families (read from ../shared/data/rfam, never copied)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rinalmo_search.cli import main
from rinalmo_search.errors import InputError
from rinalmo_search.evaluation.msa_benchmark import (
    METHODS,
    QueryScores,
    evaluate_msa,
    family_means,
    scored_by_both,
    summary_table,
)

RFAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rfam"
FAMILIES = ["RF00057", "RF00042"]  # RyhB (26 seeds), CopA (37 seeds)

pytestmark = [
    pytest.mark.slow,  # one evaluation takes ~10 s, the CLI test ~7 s
    pytest.mark.skipif(
        not (RFAM / "sequences.fasta").is_file(),
        reason=f"the shared Rfam data is not at {RFAM} (this test reads real seed alignments)",
    ),
]


@pytest.fixture(scope="module")
def results():
    return evaluate_msa(RFAM, families=FAMILIES, background=300, top_k=100, threads=2,
                        progress=False)


def test_every_family_is_scored_for_every_method(results):
    assert [r.family for r in results] == FAMILIES
    for row in results:
        assert set(row.members) == set(METHODS) == set(row.sps)
        for source in ("ours", "blastn"):
            assert 1 <= row.members[source] <= row.n_seed
            # the MAFFT-alone score is on the same retrieved set as the full pipeline
            assert row.members[f"{source}_mafft"] == row.members[source]
        for method in METHODS:
            value = row.sps[method]
            if row.members[method] >= 2:
                assert 0.0 <= value <= 1.0
                assert 0.0 <= row.column_score[method] <= 1.0
            else:
                assert math.isnan(value)
        both = row.members["ours_common"]
        assert both <= min(row.members["ours"], row.members["blastn"])
    # RyhB and CopA seeds are close relatives: BLASTn finds several of them
    assert all(row.members["blastn"] >= 3 for row in results)


def test_summary_table_has_a_line_per_family_and_the_mean(results):
    table = summary_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("family") and "SPS ours" in lines[0] and "SPS BLASTn" in lines[0]
    assert any(line.startswith("RF00057") for line in lines)
    (mean_index,) = [i for i, line in enumerate(lines) if line.startswith("mean ")]
    if any(scored_by_both(row) for row in results):
        assert lines[mean_index + 1].startswith("paired ")
        assert lines[-1].startswith("paired: the ")
    else:
        assert mean_index == len(lines) - 1
    means = family_means(results)
    assert [m["family"] for m in means] == FAMILIES


def test_cli_writes_per_query_tsv(tmp_path: Path, capsys):
    out = tmp_path / "scores.tsv"
    code = main(["evaluate-msa", "--rfam", str(RFAM), "--families", "RF00057",
                 "--background", "100", "--threads", "2", "--out", str(out)])
    assert code == 0
    header, *rows = out.read_text().splitlines()
    assert header.split("\t")[:4] == ["family", "query", "n_seed", "members_ours"]
    assert len(rows) == 1 and rows[0].startswith("RF00057\t")
    assert "mean" in capsys.readouterr().out


def test_unknown_family_is_an_input_error():
    with pytest.raises(InputError, match=r"no seed alignment for family 'RF99999'"):
        evaluate_msa(RFAM, families=["RF99999"])


def _query(family: str, ours: float, blastn: float) -> QueryScores:
    row = QueryScores(family=family, query=f"{family}-{ours}", n_seed=10)
    for method in METHODS:
        value = blastn if method.startswith("blastn") else ours
        row.members[method] = 1 if math.isnan(value) else 5
        row.sps[method] = row.column_score[method] = row.bp_f1[method] = value
    return row


def test_paired_means_leave_out_a_query_only_one_tool_scored():
    # family A: BLASTn retrieved no other member for the second query (SPS nan)
    results = [_query("A", 0.9, 0.8), _query("A", 0.5, math.nan), _query("B", 0.7, 0.6),
               _query("C", 0.4, math.nan)]
    plain = {r["family"]: r for r in family_means(results)}
    assert plain["A"]["sps_ours"] == pytest.approx(0.7)  # both queries
    assert plain["A"]["sps_blastn"] == pytest.approx(0.8)  # its one scored query
    paired = {r["family"]: r for r in family_means(results, paired=True)}
    assert set(paired) == {"A", "B"}  # C has no query both tools scored
    assert paired["A"]["sps_ours"] == pytest.approx(0.9)
    assert paired["A"]["queries"] == 1
    last = summary_table(results).splitlines()
    paired_line = next(line for line in last if line.startswith("paired "))
    # mean over families A and B of the paired queries: ours (0.9 + 0.7) / 2, BLASTn 0.7
    assert "0.800" in paired_line.split() and "0.700" in paired_line.split()
    assert "the 2 of 4 queries" in last[-1]
