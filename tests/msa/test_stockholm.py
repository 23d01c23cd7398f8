"""The one Stockholm parser (rinalmo_search.msa.stockholm): multi-alignment files, gzip,
records with their labels, and messages that name the file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rinalmo_search.errors import InputError
from rinalmo_search.msa.stockholm import (
    iter_stockholm,
    read_stockholm,
    read_stockholm_records,
)

TWO = (
    "# STOCKHOLM 1.0\n#=GF AC RF00001\n#=GF CL CL00113\ns1 AC-GU\ns2 ACGGU\n"
    "#=GC SS_cons <.-.>\n//\n# STOCKHOLM 1.0\n#=GF AC RF00002\ns3 GG-G\n//\n"
)


def _write(tmp_path: Path, text: str, name: str = "two.sto") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["two.sto", "two.sto.gz"])
def test_stockholm_records_carry_family(tmp_path: Path, name: str) -> None:
    records = read_stockholm_records(_write(tmp_path, TWO, name))
    assert [(r.id, r.sequence, r.family, r.clan, r.description) for r in records] == [
        ("s1", "ACGU", "RF00001", "CL00113", "RF00001 CL00113"),
        ("s2", "ACGGU", "RF00001", "CL00113", "RF00001 CL00113"),
        ("s3", "GGG", "RF00002", "", "RF00002 NA"),
    ]


def test_every_alignment_in_order_and_the_first_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, TWO)
    alignments = list(iter_stockholm(path))
    assert [a.names for a in alignments] == [["s1", "s2"], ["s3"]]
    assert alignments[0].gc == {"SS_cons": "<.-.>"} and alignments[1].gf_text("AC") == "RF00002"
    assert read_stockholm(path).names == ["s1", "s2"]


def test_interleaved_blocks_and_gf_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "# STOCKHOLM 1.0\n#=GF DE two\n#=GF DE lines\na AC\nb A-\n\n"
                            "a GU\nb .U\n//\n", "i.sto")
    alignment = read_stockholm(path)
    assert alignment.rows == ["ACGU", "A-.U"]
    assert alignment.gf_text("DE") == "two lines" and alignment.gf_first_word("AC") == ""


@pytest.mark.parametrize(("text", "message"), [
    ("", r"e.sto:1: not a Stockholm file"),
    (">a\nACGU\n", r"e.sto:1: not a Stockholm file .*found '>a'"),
    ("# STOCKHOLM 1.0\na ACGU\n", r"e.sto: Stockholm alignment has no '//' terminator"),
    ("# STOCKHOLM 1.0\na AC GU\n//\n", r"e.sto:2: expected 'name aligned-sequence'"),
    (TWO + "junk\n", r"e.sto:12: not a Stockholm file .*found 'junk'"),
])
def test_malformed_files_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(iter_stockholm(_write(tmp_path, text, "e.sto")))


def test_damaged_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sto.gz"
    path.write_bytes(gzip.compress(TWO.encode())[:-12])
    with pytest.raises(InputError, match="bad.sto.gz: cannot read Stockholm file"):
        list(iter_stockholm(path))
