"""FASTA reading: validation and the messages users see (Stockholm: tests/msa/test_stockholm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rinalmo_search.errors import InputError
from rinalmo_search.seqio import (
    atomic_write,
    labels_from_description,
    read_fasta,
    read_labels,
    sequence_hash,
)


def write(tmp_path: Path, text: str, name: str = "in.fasta") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_records_normalised_and_labelled(tmp_path: Path) -> None:
    path = write(tmp_path, ">a RF00005 CL00001 tRNA\nacgt\nAC-GU\n\n>b RF00001 NA 5S\nGGGN\n")
    records = read_fasta(path)
    assert [r.id for r in records] == ["a", "b"]
    assert records[0].sequence == "ACGUACGU"
    assert (records[0].family, records[0].clan) == ("RF00005", "CL00001")
    assert (records[1].family, records[1].clan) == ("RF00001", "")
    assert records[1].source == f"{path}:5"


def test_invalid_residue_names_file_line_and_residue(tmp_path: Path) -> None:
    path = write(tmp_path, ">a\nACGU\n>b\nACXGU\n")
    with pytest.raises(InputError, match=rf"^{path}:4: invalid residue 'X' in record 'b'"):
        read_fasta(path)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "\n\n")
    with pytest.raises(InputError, match=r"empty file"):
        read_fasta(path)


def test_not_fasta(tmp_path: Path) -> None:
    path = write(tmp_path, "# STOCKHOLM 1.0\nx ACGU\n")
    with pytest.raises(InputError, match=rf"^{path}:1: not a FASTA file"):
        read_fasta(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read FASTA file"):
        read_fasta(tmp_path / "nope.fasta")


def test_record_without_sequence(tmp_path: Path) -> None:
    path = write(tmp_path, ">a\n>b\nACGU\n")
    with pytest.raises(InputError, match=rf"^{path}:1: record 'a' has no sequence"):
        read_fasta(path)


def test_duplicate_id_with_other_sequence_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, ">a\nACGU\n>a\nGGGG\n")
    with pytest.raises(InputError, match=rf"^{path}:3: duplicate id 'a' .*first at {path}:1"):
        read_fasta(path)


def test_duplicate_identical_record_is_kept_once(tmp_path: Path, caplog) -> None:
    path = write(tmp_path, ">a RF1\nACGU\n>a RF2\nACGT\n")
    records = read_fasta(path)
    assert len(records) == 1 and "repeat an earlier id" in caplog.text and "'a'" in caplog.text


def test_sequence_hash_ignores_case_gaps_and_t_u() -> None:
    assert sequence_hash("acg-t") == sequence_hash("ACGU")
    assert sequence_hash("ACGU") != sequence_hash("ACGA")


def test_labels_from_description() -> None:
    assert labels_from_description("RF00005 CL00001 tRNA") == ("RF00005", "CL00001")
    assert labels_from_description("some other text") == ("", "")


def test_read_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "id\tfamily\tclan\na\tRF1\tCL1\nb\tRF2\tNA\n", "labels.tsv")
    assert read_labels(path) == {"a": ("RF1", "CL1"), "b": ("RF2", "")}
    bad = write(tmp_path, "a RF1 CL1\n", "bad.tsv")
    with pytest.raises(InputError, match=rf"^{bad}:1: expected tab-separated"):
        read_labels(bad)


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt") as handle:
            handle.write("x")
    finally:
        os.umask(umask)
    # the module read the process umask at import; CI and users run with 022 or 002
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 in (0o644, 0o664)
