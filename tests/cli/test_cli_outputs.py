"""``search`` outputs: one distinct folder per query, inputs never overwritten, bad outputs
refused before the search, ``-`` for standard input and output."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from rinalmo_search.cli import main
from rinalmo_search.hits import read_hits_tsv
from rinalmo_search.seqio import SequenceRecord, read_fasta, write_fasta

HOSTILE_IDS = ["q/1", "q_1", "..", ".", "a" * 300, "Q_1", "query_folders.tsv", "b" * 300]


def test_hostile_query_ids_get_distinct_folders_inside_the_output(
    tmp_path: Path, library_db: Path
) -> None:
    members = read_fasta(library_db.parent / "families.fasta")
    queries = [
        SequenceRecord(id=name, sequence=member.sequence)
        for name, member in zip(HOSTILE_IDS, members, strict=False)
    ]
    write_fasta(queries, tmp_path / "q.fasta")
    out = tmp_path / "out"
    homologs = out / "homologs"
    args = ["search", str(tmp_path / "q.fasta"), "--db", str(library_db), "--top-k", "3"]
    assert main([*args, "--out", str(out / "hits.tsv"), "--fasta-out", str(homologs)]) == 0

    assert sorted(p.name for p in out.iterdir()) == ["hits.tsv", "homologs"]  # nothing outside
    mapping = (homologs / "query_folders.tsv").read_text().splitlines()
    assert mapping[0] == "query_id\tfolder"
    folders = dict(line.split("\t") for line in mapping[1:])
    assert list(folders) == HOSTILE_IDS
    assert len({name.casefold() for name in folders.values()}) == len(HOSTILE_IDS)
    assert folders["q_1"] == "q_1"  # an id that is a safe name keeps it
    for query in queries:
        folder = homologs / folders[query.id]
        assert folder.parent == homologs and len(folders[query.id]) <= 100
        records = read_fasta(folder / "retrieved_homologs.fasta")
        assert records[0].id == query.id and records[0].sequence == query.sequence


def test_folder_names_are_stable_and_safe() -> None:
    from rinalmo_search.pipeline import query_folder_names, safe_filename

    assert safe_filename("NR_003286.2/1-1522") == "NR_003286.2_1-1522"
    assert safe_filename("..") == "_." and safe_filename(".") == "_" and safe_filename("") == "_"
    names = query_folder_names(["q/1", "q_1"])
    assert names == query_folder_names(["q/1", "q_1"])  # the same run twice, the same folders
    assert names["q_1"] == "q_1" and names["q/1"].startswith("q_1_")


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_search_refuses_to_overwrite_its_query_file(
    tmp_path: Path, library_db: Path, query_fasta: Path, link: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = query_fasta.read_bytes()
    out = query_fasta
    if link == "symlink":
        out = tmp_path / "link.fasta"
        out.symlink_to(query_fasta)
    elif link == "hardlink":
        out = tmp_path / "hard.fasta"
        os.link(query_fasta, out)
    assert main(["search", str(query_fasta), "--db", str(library_db), "--out", str(out)]) == 1
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert query_fasta.read_bytes() == before


def test_bad_outputs_are_refused_before_the_search(
    tmp_path: Path, library_db: Path, query_fasta: Path, read_only,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rinalmo_search.pipeline as pipeline

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("the search ran before the outputs were checked")

    monkeypatch.setattr(pipeline.VectorStore, "search", no_search)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    locked = read_only()
    base = ["search", str(query_fasta), "--db", str(library_db)]
    cases = [
        (["--out", str(tmp_path)], "--out", "is a folder"),
        (["--out", str(tmp_path / "h.tsv"), "--fasta-out", str(a_file)], "--fasta-out",
         "not a folder"),
        (["--out", str(locked / "h.tsv")], "--out", "cannot write in"),
        (["--out", str(tmp_path / "h.tsv"), "--fasta-out", str(locked / "homologs")],
         "--fasta-out", "cannot write in"),
        (["--out", str(a_file / "h.tsv")], "--out", "is not a folder"),
    ]
    for options, option, reason in cases:
        assert main([*base, *options]) == 1, options
        err = capsys.readouterr().err
        assert err.startswith(f"rinalmo-search: error: {option} ") and reason in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "h.tsv").exists()


def test_dash_reads_queries_from_stdin_and_writes_hits_to_stdout(
    library_db: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(query_fasta.read_bytes())))
    assert main(["search", "-", "--db", str(library_db), "--out", "-", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
    assert rows[0][:3] == ["query_id", "rank", "target_id"]
    ids = [r.id for r in read_fasta(query_fasta)]
    assert [row[0] for row in rows[1:]] == [ids[0], ids[0], ids[1], ids[1]]
    assert not Path("-").exists()


def test_gzip_and_byte_order_mark_queries(
    tmp_path: Path, library_db: Path, query_fasta: Path
) -> None:
    import gzip

    compressed = tmp_path / "q.fa.gz"
    compressed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + query_fasta.read_bytes()))
    out = tmp_path / "hits.tsv"
    assert main(["search", str(compressed), "--db", str(library_db), "--out", str(out),
                 "--top-k", "1"]) == 0
    assert [row["query_id"] for row in read_hits_tsv(out)] == [
        r.id for r in read_fasta(query_fasta)
    ]


def test_outputs_inside_the_database_folder_are_refused(
    tmp_path: Path, library_db: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in library_db.iterdir())
    base = ["search", str(query_fasta), "--db", str(library_db)]
    for options in (["--out", str(tmp_path / "h.tsv"), "--fasta-out", str(library_db)],
                    ["--out", str(library_db / "hits.tsv")]):
        assert main([*base, *options]) == 1
        assert "is inside the database" in capsys.readouterr().err
    assert sorted(p.name for p in library_db.iterdir()) == before
