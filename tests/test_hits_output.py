"""Statistics a user can read: E-values for the collection searched, alignment coordinates,
``--max-evalue``, a documented hits table and ``--outfmt blast6``."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rinalmo_search.cli import main
from rinalmo_search.hits import (
    BLAST6_COLUMNS,
    COLUMN_DOCS,
    HIT_COLUMNS,
    DatabaseSize,
    Hit,
    read_hits_tsv,
)
from rinalmo_search.rerank import (
    GAP_EXTEND,
    GAP_OPEN,
    MATCH,
    MISMATCH,
    REFERENCE_DB_RESIDUES,
    alignment_significance,
    describe_alignments,
    sw_alignments,
    sw_scores,
)
from rinalmo_search.seqio import SequenceRecord, read_fasta, write_fasta


def _random(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGU") for _ in range(n))


def test_alignment_coordinates_of_an_embedded_copy() -> None:
    rng = random.Random(3)
    query = _random(rng, 60)
    core = list(query[5:55])
    core[20] = "A" if core[20] != "A" else "C"  # one substitution
    target = _random(rng, 10) + "".join(core) + _random(rng, 10)
    (aln,) = sw_alignments(query, [target])
    assert (aln.query_start, aln.query_end) == (6, 55)
    assert (aln.target_start, aln.target_end) == (11, 60)
    assert (aln.length, aln.identities, aln.mismatches, aln.gap_opens) == (50, 49, 1, 0)
    assert aln.percent_identity == pytest.approx(98.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_alignments_agree_with_the_score_kernel(seed: int) -> None:
    rng = random.Random(seed)
    query = _random(rng, 80)
    targets = []
    for _ in range(15):
        mutated = [b if rng.random() > 0.15 else rng.choice(["", "A", b + "GG"]) for b in query]
        targets.append(_random(rng, rng.randint(0, 20)) + "".join(mutated))
    alignments = sw_alignments(query, targets)
    np.testing.assert_array_equal([a.raw_score for a in alignments], sw_scores(query, targets))
    for aln, target in zip(alignments, targets, strict=True):
        gap_columns = aln.length - aln.identities - aln.mismatches
        # the counts re-add to the score: the columns and gap runs are the alignment's own
        assert aln.raw_score == (MATCH * aln.identities + MISMATCH * aln.mismatches
                                 - GAP_OPEN * aln.gap_opens
                                 - GAP_EXTEND * (gap_columns - aln.gap_opens))
        assert 1 <= aln.query_start <= aln.query_end <= len(query)
        assert 1 <= aln.target_start <= aln.target_end <= len(target)


def test_evalue_is_for_the_database_searched() -> None:
    rng = random.Random(5)
    query = SequenceRecord(id="q", sequence=_random(rng, 70))
    hits = [Hit(target_id="t", score=0.5, sequence=query.sequence[10:60])]
    describe_alignments(query, hits, DatabaseSize(10, 1e6))
    small = hits[0].evalue
    describe_alignments(query, hits, DatabaseSize(20, 2e6))
    assert hits[0].evalue == pytest.approx(2 * small)  # E = K m n exp(-lambda S)
    describe_alignments(query, hits, DatabaseSize(1, REFERENCE_DB_RESIDUES))
    reference = alignment_significance(np.array([50.0]), 70)[0]  # 50 identical nt
    assert hits[0].evalue == pytest.approx(10 ** -reference)


def _table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    return comments, read_hits_tsv(path)


def test_search_reports_evalues_coordinates_and_filters(tmp_path: Path,
                                                        family_fasta: Path) -> None:
    db = str(tmp_path / "lib.db")
    records = read_fasta(family_fasta)
    assert main(["-q", "index", str(family_fasta), "--db", db]) == 0
    queries = tmp_path / "q.fasta"
    write_fasta(records[:2], queries)
    hits_tsv = tmp_path / "all.tsv"
    base = ["-q", "search", str(queries), "--db", db, "--top-k", "20"]
    assert main([*base, "--out", str(hits_tsv)]) == 0
    comments, rows = _table(hits_tsv)
    # the '#' block documents every column and names the database searched
    for column in HIT_COLUMNS:
        assert any(line.startswith(f"# {column}: ") for line in comments), column
    residues = sum(len(r.sequence) for r in records)
    assert f"# database: {len(records)} sequences, {residues} nt" in comments
    assert len(rows) == 40
    lengths = {r.id: len(r.sequence) for r in records}
    query_lengths = {r.id: len(r.sequence) for r in records[:2]}
    for row in rows:
        assert 1 <= int(row["query_start"]) <= int(row["query_end"]) <= query_lengths[
            row["query_id"]]
        assert 1 <= int(row["target_start"]) <= int(row["target_end"]) <= lengths[
            row["target_id"]]
        assert 0.0 <= float(row["score"]) <= 1.0  # still the calibrated probability
        # the E-value is the alignment score's, rescaled from the reference to this database
        expected = 10 ** -float(row["alignment_score"]) * residues / REFERENCE_DB_RESIDUES
        assert float(row["evalue"]) == pytest.approx(expected, rel=1e-3)
    evalues = [float(row["evalue"]) for row in rows]
    assert min(evalues) < 1e-20 and max(evalues) > 1e-3  # family members and others

    filtered = tmp_path / "filtered.tsv"
    assert main([*base, "--out", str(filtered), "--max-evalue", "1e-3"]) == 0
    kept = _table(filtered)[1]
    assert 0 < len(kept) < len(rows)
    assert all(float(row["evalue"]) <= 1e-3 for row in kept)
    assert [(r["query_id"], r["target_id"]) for r in kept] == [
        (r["query_id"], r["target_id"]) for r in rows if float(r["evalue"]) <= 1e-3]

    blast = tmp_path / "hits.m8"
    assert main([*base, "--out", str(blast), "--outfmt", "blast6"]) == 0
    lines = [line.split("\t") for line in blast.read_text().splitlines()]
    assert len(lines) == len(rows) and all(len(cells) == len(BLAST6_COLUMNS) for cells in lines)
    for cells, row in zip(lines, rows, strict=True):
        record = dict(zip(BLAST6_COLUMNS, cells, strict=True))
        assert (record["qseqid"], record["sseqid"]) == (row["query_id"], row["target_id"])
        assert (record["qstart"], record["qend"], record["sstart"], record["send"]) == (
            row["query_start"], row["query_end"], row["target_start"], row["target_end"])
        assert float(record["evalue"]) == pytest.approx(float(row["evalue"]), rel=0.01)
        assert 0.0 < float(record["pident"]) <= 100.0
        assert int(record["length"]) >= int(row["query_end"]) - int(row["query_start"]) + 1
    assert set(COLUMN_DOCS) == set(HIT_COLUMNS)


def test_max_evalue_must_be_positive(tmp_path: Path, family_fasta: Path, capsys) -> None:
    code = main(["search", str(family_fasta), "--db", str(tmp_path / "x.db"), "--out",
                 str(tmp_path / "h.tsv"), "--max-evalue", "0"])
    assert code != 0
    assert "--max-evalue" in capsys.readouterr().err
