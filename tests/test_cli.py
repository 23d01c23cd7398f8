"""The foundation path through the real CLI: index → search on a real Milvus Lite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rinalmo_search.cli import build_parser, main
from rinalmo_search.hits import HIT_COLUMNS, read_hits_tsv
from rinalmo_search.seqio import read_fasta, write_fasta


def test_every_command_teaches_by_example(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"index", "search", "msa", "demo"} <= set(commands)
    for name, command in commands.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "examples:" in capsys.readouterr().out, name
        # sub-actions too (weights download, data prepare, ...): a description and an example
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    with pytest.raises(SystemExit):
                        main([name, sub_name, "--help"])
                    assert "examples:" in capsys.readouterr().out, (name, sub_name)
                    assert sub.description, (name, sub_name)


def test_index_is_incremental_and_search_writes_table_and_fasta(
    tmp_path: Path, family_fasta: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "lib.db")
    records = read_fasta(family_fasta)
    first_half = tmp_path / "first.fasta"
    write_fasta(records[:20], first_half)

    assert main(["index", str(first_half), "--db", db]) == 0
    assert "added 20 new" in caplog.text
    caplog.clear()
    report = tmp_path / "report.tsv"
    assert main(["index", str(family_fasta), "--db", db, "--report", str(report)]) == 0
    assert "added 28 new (20 already present)" in caplog.text
    assert report.read_text().splitlines()[1].split("\t")[3:6] == ["48", "28", "48"]

    queries = [records[0], records[9], records[40]]
    query_fasta = tmp_path / "q.fasta"
    write_fasta(queries, query_fasta)
    hits_tsv, fasta_dir = tmp_path / "hits.tsv", tmp_path / "homologs"
    args = ["search", str(query_fasta), "--db", db, "--top-k", "7", "--out", str(hits_tsv)]
    assert main([*args, "--fasta-out", str(fasta_dir)]) == 0

    lines = [line for line in hits_tsv.read_text().splitlines() if not line.startswith("#")]
    assert lines[0].split("\t") == list(HIT_COLUMNS)
    rows = read_hits_tsv(hits_tsv)
    assert len(rows) == 3 * 7
    for query in queries:
        mine = [row for row in rows if row["query_id"] == query.id]
        assert [int(row["rank"]) for row in mine] == list(range(1, 8))
        scores = [float(row["score"]) for row in mine]
        assert scores == sorted(scores, reverse=True)
        assert mine[0]["target_id"] == query.id  # the query itself is in the library
        # simulated families of 8: the 7 best hits are the query's own family
        assert {row["family"] for row in mine} == {query.family}
        assert all(int(row["target_length"]) > 0 for row in mine)

        homologs = read_fasta(fasta_dir / query.id / "retrieved_homologs.fasta")
        assert homologs[0].id == query.id and homologs[0].sequence == query.sequence
        assert [r.id for r in homologs[1:]] == [row["target_id"] for row in mine[1:]]


def test_min_score_and_filter(tmp_path: Path, family_fasta: Path) -> None:
    db = str(tmp_path / "lib.db")
    assert main(["index", str(family_fasta), "--db", db, "-q"]) == 0
    query = read_fasta(family_fasta)[0]
    write_fasta([query], tmp_path / "q.fasta")
    out = tmp_path / "hits.tsv"
    base = ["search", str(tmp_path / "q.fasta"), "--db", db, "--out", str(out), "--top-k", "20"]
    assert main([*base, "--min-score", "0.5"]) == 0
    rows = read_hits_tsv(out)
    assert rows and all(float(row["score"]) >= 0.5 for row in rows)
    assert main([*base, "--filter", 'family == "SIMF00003"']) == 0
    assert {row["family"] for row in read_hits_tsv(out)} == {"SIMF00003"}


def test_bad_fasta_fails_with_file_and_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nACGU\n>q2\nAC GU\nAC!U\n")
    out = tmp_path / "hits.tsv"
    code = main(["search", str(bad), "--db", str(tmp_path / "x.db"), "--out", str(out)])
    assert code == 1
    assert f"error: {bad}:5: invalid residue '!' in record 'q2'" in capsys.readouterr().err
    assert not out.exists()


def test_search_of_a_missing_collection_says_how_to_create_it(
    tmp_path: Path, family_fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", str(family_fasta), "--db", str(tmp_path / "empty.db"), "--out", "h.tsv"])
    assert code == 1
    assert "rinalmo-search index" in capsys.readouterr().err


def test_labels_table_overrides_headers(tmp_path: Path, family_fasta: Path) -> None:
    db = str(tmp_path / "lib.db")
    records = read_fasta(family_fasta)
    labels = tmp_path / "labels.tsv"
    labels.write_text(
        "id\tfamily\tclan\n" + "".join(f"{r.id}\tRF99999\tCL00042\n" for r in records)
    )
    assert main(["index", str(family_fasta), "--db", db, "--labels", str(labels), "-q"]) == 0
    write_fasta(records[:1], tmp_path / "q.fasta")
    out = tmp_path / "hits.tsv"
    assert main(["search", str(tmp_path / "q.fasta"), "--db", db, "--out", str(out)]) == 0
    assert {(r["family"], r["clan"]) for r in read_hits_tsv(out)} == {("RF99999", "CL00042")}


def test_two_stage_search_keeps_both_scores(tmp_path: Path, family_fasta: Path) -> None:
    db = str(tmp_path / "lib.db")
    assert main(["index", str(family_fasta), "--db", db, "-q"]) == 0
    query = read_fasta(family_fasta)[3]
    write_fasta([query], tmp_path / "q.fasta")
    out = tmp_path / "hits.tsv"
    base = ["search", str(tmp_path / "q.fasta"), "--db", db, "--out", str(out), "--top-k", "10"]

    assert main([*base, "--rerank", "none"]) == 0
    stage1 = read_hits_tsv(out)
    assert all(row["alignment_score"] == "" for row in stage1)
    assert all(row["score"] == row["embedding_score"] for row in stage1)

    assert main([*base, "--rerank", "sw", "--candidates", "40"]) == 0
    stage2 = read_hits_tsv(out)
    assert len(stage2) == 10
    assert all(row["alignment_score"] != "" for row in stage2)
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in stage2)  # a probability
    assert [row["family"] for row in stage2[:7]] == [query.family] * 7
    scores = [float(row["score"]) for row in stage2]
    assert scores == sorted(scores, reverse=True)


def test_upsert_rewrites_only_changed_records(
    tmp_path: Path, family_fasta: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "lib.db")
    assert main(["index", str(family_fasta), "--db", db]) == 0
    records = read_fasta(family_fasta)
    records[0].sequence = records[0].sequence[::-1]
    changed = tmp_path / "changed.fasta"
    write_fasta(records, changed)
    assert main(["index", str(changed), "--db", db]) == 1  # refused without --upsert
    caplog.clear()
    assert main(["index", str(changed), "--db", db, "--upsert"]) == 0
    assert "added 1 new (47 already present)" in caplog.text


def test_new_version_swaps_model_behind_the_collection_name(
    tmp_path: Path, family_fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "lib.db")
    write_fasta(read_fasta(family_fasta)[:1], tmp_path / "q.fasta")
    search = ["search", str(tmp_path / "q.fasta"), "--db", db, "--out", str(tmp_path / "h.tsv")]
    assert main(["index", str(family_fasta), "--db", db, "--model", "kmer", "-q"]) == 0
    assert main([*search, "--model", "kmer"]) == 0
    rebuild = ["index", str(family_fasta), "--db", db, "--model", "compact-kmer", "--new-version"]
    assert main([*rebuild, "--drop-previous", "-q"]) == 0
    assert main([*search, "--model", "compact-kmer"]) == 0
    assert len(read_hits_tsv(tmp_path / "h.tsv")) == 48
    capsys.readouterr()
    assert main([*search, "--model", "kmer"]) == 1  # the old model's version is gone
    assert "compact-kmer" in capsys.readouterr().err
