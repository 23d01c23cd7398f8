"""Inputs as users have them: gzip, a byte-order mark, ``-`` for a pipe; bytes that are not
UTF-8 stop with the file and line; every sub-command's help teaches by example."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from rinalmo_search.cli import main
from rinalmo_search.seqio import read_fasta, write_fasta


def test_index_reads_gzip_and_standard_input(
    tmp_path: Path, library_db: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    members = read_fasta(library_db.parent / "families.fasta")
    write_fasta(members[:5], tmp_path / "a.fasta")
    write_fasta(members[5:9], tmp_path / "b.fasta")
    packed = tmp_path / "a.fa.gz"
    packed.write_bytes(gzip.compress((tmp_path / "a.fasta").read_bytes()))
    piped = io.BytesIO((tmp_path / "b.fasta").read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(piped))
    db = str(tmp_path / "new.db")
    report = tmp_path / "report.tsv"
    assert main(["index", str(packed), "-", "--db", db, "--report", str(report)]) == 0
    assert "added 9 new" in caplog.text
    assert report.read_text().splitlines()[1].split("\t")[3:6] == ["9", "9", "9"]


def test_non_utf8_header_names_file_and_line(
    tmp_path: Path, library_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two ids that differ only in a Latin-1 byte must not both become 'q\ufffd'
    bad = tmp_path / "latin1.fasta"
    bad.write_bytes(b">q\xe9\nACGUACGUAC\n>q\xe8\nACGUACGUAC\n")
    out = tmp_path / "h.tsv"
    assert main(["search", str(bad), "--db", str(library_db), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: {bad}:1: not UTF-8 text (byte 0xe9 at column 3)" in err
    assert not out.exists()
    assert main(["index", str(bad), "--db", str(tmp_path / "new.db")]) == 1
    assert f"{bad}:1: not UTF-8 text" in capsys.readouterr().err


def test_embed_reads_fasta_through_seqio(tmp_path: Path) -> None:
    packed = tmp_path / "x.fa.gz"
    packed.write_bytes(gzip.compress(b"\xef\xbb\xbf>a\nACGU-ACGU\n>b\nggcuaNNacgu\n"))
    out, ids = tmp_path / "x.npy", tmp_path / "ids.txt"
    assert main(["embed", str(packed), "--model", "kmer", "--out", str(out),
                 "--ids", str(ids)]) == 0
    assert np.load(out).shape[0] == 2 and ids.read_text() == "a\nb\n"


def test_weights_download_help_has_a_description_and_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["weights", "download", "--help"])
    text = capsys.readouterr().out
    assert "SHA-256" in text and "examples:" in text
    assert "rinalmo-search weights download micro" in text


def test_standard_input_is_given_once_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    assert main(["index", "-", "--labels", "-", "--db", str(db)]) == 1
    assert "Standard input ('-') can be read once" in capsys.readouterr().err
    assert not db.exists()
