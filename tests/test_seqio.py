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


def test_gzip_bom_and_crlf_read_like_plain_text(tmp_path: Path) -> None:
    import gzip

    text = b"\xef\xbb\xbf>a RF00005 CL00001\r\nAC-GU\r\n>b\r\nGGG\r\n"
    plain = tmp_path / "plain.fa"
    plain.write_bytes(text)
    packed = tmp_path / "packed.txt"  # recognised by its bytes, not its name
    packed.write_bytes(gzip.compress(text))
    for path in (plain, packed):
        records = read_fasta(path)
        assert [(r.id, r.sequence, r.family) for r in records] == [
            ("a", "ACGU", "RF00005"), ("b", "GGG", "")
        ]
        assert records[1].source == f"{path}:3"


def test_dash_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b">a\nACGU\n>b\nAC!\n")))
    with pytest.raises(InputError, match=r"^<stdin>:4: invalid residue '!' in record 'b'"):
        read_fasta("-")


def test_non_utf8_bytes_name_file_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.fa"
    path.write_bytes(b">ok\nACGU\n>caf\xe9 desc\nACGU\n")
    with pytest.raises(InputError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9 at column 5\)"):
        read_fasta(path)
    labels = tmp_path / "labels.tsv"
    labels.write_bytes(b"a\tRF1\n\x00\xff\xfe\n")
    with pytest.raises(InputError, match=rf"^{labels}:2: not UTF-8 text"):
        read_labels(labels)


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "cut.fa.gz"
    path.write_bytes(gzip.compress(b">a\n" + b"ACGU" * 5000 + b"\n")[:60])
    with pytest.raises(InputError, match=rf"^{path}:\d+: damaged or truncated gzip data"):
        read_fasta(path)


def test_sequences_as_written_keep_gaps_and_codes(tmp_path: Path) -> None:
    from rinalmo_search.seqio import iter_fasta_as_written

    path = write(tmp_path, ">a\nac-GU\nNN.x\n>b\nU\n")
    assert list(iter_fasta_as_written(path)) == [("a", "ac-GUNN.x"), ("b", "U")]
    bad = write(tmp_path, ">a\nACGÜ\n", "bad.fa")
    with pytest.raises(InputError, match=rf"^{bad}:2: record 'a' has non-ASCII characters"):
        list(iter_fasta_as_written(bad))


def test_check_output_refuses_inputs_links_and_wrong_kinds(tmp_path: Path) -> None:
    import os

    from rinalmo_search.errors import ConfigError
    from rinalmo_search.seqio import check_output

    source = write(tmp_path, ">a\nACGU\n")
    (tmp_path / "link.fa").symlink_to(source)
    os.link(source, tmp_path / "hard.fa")
    for alias in (source, tmp_path / "link.fa", tmp_path / "hard.fa"):
        with pytest.raises(ConfigError, match="refusing to overwrite an input"):
            check_output(alias, option="--out", inputs=[source])
    with pytest.raises(ConfigError, match=r"^--out .*: is a folder"):
        check_output(tmp_path, option="--out")
    with pytest.raises(ConfigError, match=r"^--fasta-out .*: exists and is not a folder"):
        check_output(source, option="--fasta-out", folder=True)
    with pytest.raises(ConfigError, match=r"is not a folder"):
        check_output(source / "x.tsv", option="--out")
    check_output(tmp_path / "new" / "deeper" / "x.tsv", option="--out", inputs=[source])
    check_output("-", option="--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.fa", "in.fasta", "link.fa"]


def test_open_output_dash_is_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    from rinalmo_search.seqio import open_output

    with open_output("-") as handle:
        handle.write("x\ty\n")
    assert capsys.readouterr().out == "x\ty\n"
