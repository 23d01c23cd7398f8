"""Bad options and inputs end in one line naming the option, variable or file:line — before
anything is written — and surprising searches (empty collection, a too-short query, options
without effect) say so instead of staying silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from rinalmo_search.milvus import VectorStore

from rinalmo_search.cli import main
from rinalmo_search.hits import read_hits_tsv
from rinalmo_search.seqio import read_fasta, write_fasta


def one_error_line(err: str) -> str:
    """The error line of ``err``, checking that nothing else (no traceback) was printed."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("rinalmo-search: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--threads", "0"], "Invalid --threads value 0: input should be greater than or equal"),
        (["--top-k", "0"], "Invalid --top-k value 0: expected a positive integer"),
        (["--candidates", "0"], "Invalid --candidates value 0: expected a positive integer"),
    ],
)
def test_search_option_out_of_range(
    tmp_path: Path, query_fasta: Path, library_db: Path, options: list[str], expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "h.tsv"
    args = ["search", str(query_fasta), "--db", str(library_db), "--out", str(out), *options]
    assert main(args) == 1
    assert expected in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_index_batch_size_from_option_and_environment(
    tmp_path: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "new.db"
    assert main(["index", str(query_fasta), "--db", str(db), "--batch-size", "0"]) == 1
    assert "Invalid --batch-size value 0" in one_error_line(capsys.readouterr().err)
    monkeypatch.setenv("RINALMO_SEARCH_BATCH_SIZE", "abc")
    assert main(["index", str(query_fasta), "--db", str(db)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "Invalid RINALMO_SEARCH_BATCH_SIZE value 'abc': input should be a valid integer" in line
    assert not db.exists()


def test_binary_labels_file_names_file_and_line(
    tmp_path: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.tsv"
    labels.write_bytes(b"id\tfamily\tclan\nq1\tRF1\tCL1\n\x7fELF\x02\x01\xd0\x9f\xff\x00\n")
    db = tmp_path / "new.db"
    assert main(["index", str(query_fasta), "--db", str(db), "--labels", str(labels)]) == 1
    assert f"error: {labels}:3: not UTF-8 text (byte 0xff" in one_error_line(
        capsys.readouterr().err
    )
    assert not db.exists()


def test_unwritable_index_report_is_refused_before_any_row_is_stored(
    tmp_path: Path, query_fasta: Path, read_only, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    report = read_only() / "report.tsv"
    assert main(["index", str(query_fasta), "--db", str(db), "--report", str(report)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"--report {report}: cannot write in {report.parent}" in line
    assert not db.exists()  # nothing was committed (not even a database created)


def test_malformed_filter_is_one_line_without_rpc_dump(
    tmp_path: Path, query_fasta: Path, library_db: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("searched before the filter was checked")

    monkeypatch.setattr(VectorStore, "search", no_search)
    out = tmp_path / "h.tsv"
    args = ["search", str(query_fasta), "--db", str(library_db), "--out", str(out)]
    assert main([*args, "--filter", "family=="]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert "Invalid filter 'family==': unexpected end of expression" in line
    assert "fields: id, family, clan, length, source" in line


def test_empty_collection_and_short_query_warn(
    tmp_path: Path, library_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    members = read_fasta(library_db.parent / "families.fasta")
    write_fasta(members[:2], tmp_path / "two.fasta")
    db = str(tmp_path / "emptied.db")
    assert main(["index", str(tmp_path / "two.fasta"), "--db", db, "-q"]) == 0
    assert main(["collection", "delete", members[0].id, members[1].id, "--db", db, "-q"]) == 0
    caplog.clear()
    out = tmp_path / "h.tsv"
    assert main(["search", str(tmp_path / "two.fasta"), "--db", db, "--out", str(out)]) == 0
    assert "holds no sequences, so no query has hits" in caplog.text
    assert read_hits_tsv(out) == []

    (tmp_path / "short.fasta").write_text(">one\nA\n>ok\n" + members[0].sequence + "\n")
    caplog.clear()
    args = ["search", str(tmp_path / "short.fasta"), "--db", str(library_db), "--out", str(out)]
    assert main([*args, "--top-k", "3"]) == 0
    assert "Query 'one' (1 nt) is too short for model" in caplog.text
    assert "'ok'" not in caplog.text


def test_candidates_reach_the_vector_search_and_useless_ones_warn(
    tmp_path: Path, query_fasta: Path, library_db: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    depths: list[int] = []
    real_search = VectorStore.search

    def spy(self: VectorStore, vectors: object, *, top_k: int, **kwargs: object) -> object:
        depths.append(top_k)
        return real_search(self, vectors, top_k=top_k, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(VectorStore, "search", spy)
    out = tmp_path / "h.tsv"
    base = ["search", str(query_fasta), "--db", str(library_db), "--out", str(out)]
    assert main([*base, "--top-k", "3", "--candidates", "20"]) == 0
    assert depths and max(depths) == 20  # not the default 1,000
    assert len(read_hits_tsv(out)) == 2 * 3
    assert main([*base, "--top-k", "3", "--candidates", "20", "--rerank", "none"]) == 0
    assert "--candidates is ignored with --rerank none" in caplog.text
    assert main([*base, "--top-k", "10", "--candidates", "5"]) == 0
    assert "--candidates 5 is below --top-k 10" in caplog.text


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["embed", "QUERY", "--model", "kmer", "--out", "x.npy", "--batch-size", "0"],
         "--batch-size"),
        (["embed", "QUERY", "--model", "kmer", "--out", "x.npy", "--threads", "-2"], "--threads"),
        (["demo", "--top-k", "0"], "--top-k"),
        (["data", "prepare", "--rfam-dir", "RFAM", "--out", "split", "--threads", "0"],
         "--threads"),
    ],
)
def test_other_commands_refuse_non_positive_counts(
    tmp_path: Path, query_fasta: Path, command: list[str], option: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [str(query_fasta) if a == "QUERY" else str(tmp_path) if a == "RFAM" else a
            for a in command]
    assert main(args) == 1
    assert f"Invalid {option} value" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.fasta"]
