"""``--db`` problems say their real cause, read commands never create a database, and
secrets in a server URI or token never reach a message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rinalmo_search.cli import main


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "command", [["search", "QUERY", "--out", "OUT"], ["collection", "info"],
                ["collection", "versions"], ["collection", "delete", "x"]],
)
def test_read_commands_never_create_a_database(
    tmp_path: Path, query_fasta: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "lbi.db"
    args = [str(query_fasta) if a == "QUERY" else str(tmp_path / "h.tsv") if a == "OUT" else a
            for a in command]
    assert main([*args, "--db", str(typo)]) == 1
    assert f"error: No database at {typo} (check --db" in error_line(capsys.readouterr().err)
    assert not typo.exists()


def test_a_file_as_db_is_named_as_such(
    tmp_path: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_db = tmp_path / "settings.db"
    not_a_db.write_text('{"db": "x"}\n')
    assert main(["search", str(query_fasta), "--db", str(not_a_db), "--out", "h.tsv"]) == 1
    line = error_line(capsys.readouterr().err)
    assert f"{not_a_db} is a file, not a Milvus Lite database" in line
    assert "another process" not in line


def test_read_only_database_says_it_cannot_write(
    tmp_path: Path, query_fasta: Path, library_db: Path, read_only,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Milvus Lite takes a lock and replays its log on open, so it cannot search a read-only
    copy: the message must say that, not blame another process."""
    db = read_only(library_db) / library_db.name
    out = tmp_path / "h.tsv"
    for command in (["search", str(query_fasta), "--out", str(out)], ["collection", "info"]):
        assert main([*command, "--db", str(db)]) == 1
        line = error_line(capsys.readouterr().err)
        assert f"Cannot write to Milvus Lite database {db} (" in line, line
        assert "read-only one cannot be used" in line and "another process" not in line
    new = read_only() / "new.db"
    assert main(["index", str(query_fasta), "--db", str(new)]) == 1
    assert f"Cannot create a Milvus Lite database at {new}: cannot write in" in error_line(
        capsys.readouterr().err
    )


def test_database_held_by_another_process(
    tmp_path: Path, query_fasta: Path, library_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom rinalmo_search.milvus import VectorStore\n"
         f"store = VectorStore({str(library_db)!r})\nprint('open', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "open"
        assert main(["collection", "info", "--db", str(library_db)]) == 1
        assert "another process is using it" in error_line(capsys.readouterr().err)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_secrets_in_server_uri_and_token_are_masked(
    tmp_path: Path, query_fasta: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RINALMO_SEARCH_MILVUS_TOKEN", "root:t0ken-secret")
    uri = "http://alice:pa55-secret@127.0.0.1:9/"  # port 9 (discard): nothing listens
    for command in (["collection", "info"],
                    ["search", str(query_fasta), "--out", str(tmp_path / "h.tsv")]):
        assert main([*command, "--db", uri]) == 1
        line = error_line(capsys.readouterr().err)
        assert "http://alice:***@127.0.0.1:9/" in line
        assert "pa55-secret" not in line and "t0ken-secret" not in line
    monkeypatch.setenv("RINALMO_SEARCH_THREADS", "many")
    monkeypatch.setenv("RINALMO_SEARCH_DB", uri)
    assert main(["collection", "info"]) == 1
    line = error_line(capsys.readouterr().err)
    assert "RINALMO_SEARCH_THREADS" in line and "pa55-secret" not in line
