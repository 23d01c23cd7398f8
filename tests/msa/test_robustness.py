"""Edge cases of build_msa, each with a clear outcome, with the real tools."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from msa_simulate import ungapped, write_fasta

from rinalmo_search.cli import main
from rinalmo_search.errors import ConfigError, ToolError
from rinalmo_search.msa import build_msa
from rinalmo_search.msa.stockholm import read_stockholm


def _build(tmp_path: Path, records: list[tuple[str, str]], **options):
    fasta = write_fasta(tmp_path / "in.fasta", records)
    out = tmp_path / "out.sto"
    result = build_msa(fasta, out, aligner="linsi", **options)
    return result, read_stockholm(out)


def test_one_sequence_is_its_own_draft(tmp_path: Path, family):
    result, alignment = _build(tmp_path, [("only", family.sequences[0])])
    assert result.aligner_used == "none" and result.n_sequences == 1
    assert alignment.names == ["only"]
    assert ungapped(alignment.rows[0]) == family.sequences[0]
    assert "<" in alignment.gc["SS_cons"]  # its MFE structure became the model's consensus
    methods = alignment.gf_values("BM")
    assert not any(m.startswith("mafft") for m in methods)
    assert "Aligner used: none (one sequence)" in alignment.gf_values("CC")


def test_two_sequences(tmp_path: Path, family):
    records = [("q", family.sequences[0]), ("h", family.sequences[1])]
    result, alignment = _build(tmp_path, records)
    assert result.aligner_used == "linsi"
    assert alignment.names == ["q", "h"]
    assert [ungapped(r) for r in alignment.rows] == [s for _, s in records]


def test_identical_sequences_align_without_gaps(tmp_path: Path, family):
    sequence = family.sequences[2]
    _, alignment = _build(tmp_path, [("a", sequence), ("b", sequence), ("c", sequence)])
    assert len(set(alignment.rows)) == 1
    assert ungapped(alignment.rows[0]) == sequence
    assert not any(c in "-." for c in alignment.rows[0])


def test_iupac_codes_and_n_are_kept_as_given(tmp_path: Path, family):
    s = family.sequences
    records = [
        ("q", s[0][:10] + "NNRY" + s[0][14:]),
        ("h1", s[1][:5] + "KMSWBDHV" + s[1][5:]),
        ("h2", "I" + s[2]),  # inosine: given to the tools as N, written back as I
        ("h3", "N" * 30 + s[3]),
    ]
    _, alignment = _build(tmp_path, records)
    assert [ungapped(r) for r in alignment.rows] == [seq for _, seq in records]


@pytest.mark.slow  # ~7 s
def test_very_long_sequences_get_a_larger_mxsize(tmp_path: Path):
    # cmalign's own limit is 1028 MB per thread; we pass --mxsize from the available memory
    # (never below 1028) rather than splitting long sequences, which would cut the structure.
    rng = random.Random(11)
    long = "".join(rng.choice("ACGU") for _ in range(1200))
    records = [("q", long), ("h", long[:600] + "GA" + long[600:1100] + long[1105:])]
    result, alignment = _build(tmp_path, records, threads=2, rounds=1)
    assert [ungapped(r) for r in alignment.rows] == [seq for _, seq in records]
    (cmalign_line,) = [m for m in alignment.gf_values("BM") if m.startswith("cmalign")]
    mxsize = int(cmalign_line.split("--mxsize")[1].split()[0])
    assert mxsize >= 1028


def test_matrix_above_mxsize_is_a_tool_error_with_the_advice(tmp_path: Path, family):
    records = [(f"s{i}", s) for i, s in enumerate(family.sequences[:3])]
    with pytest.raises(ToolError) as caught:
        _build(tmp_path, records, mxsize=0.01)
    error = caught.value
    assert "cmalign failed with exit status" in str(error)
    # cmalign's own stderr tail: "... need 0.12 Mb > 0.01 Mb limit. Use --mxsize, --maxtau ..."
    assert "Mb limit" in str(error) and "Use --mxsize" in str(error)
    assert error.command[0].endswith("cmalign") and "--mxsize" in error.command
    assert not (tmp_path / "out.sto").exists()


@pytest.fixture
def path_without_cmalign(tmp_path: Path, monkeypatch) -> Path:
    """A PATH holding every program of /usr/bin and /bin except ``cmalign``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name != "cmalign" and not target.exists():
                target.symlink_to(entry.path)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_non_positive_mxsize_and_rounds_are_refused(tmp_path: Path, family_fasta):
    with pytest.raises(ConfigError, match=r"Invalid 'mxsize' value: 0 \(expected a positive"):
        build_msa(family_fasta, tmp_path / "o.sto", mxsize=0)
    with pytest.raises(ConfigError, match=r"Invalid 'rounds' value: 0 \(expected a positive"):
        build_msa(family_fasta, tmp_path / "o.sto", rounds=0)


def test_missing_tool_is_named_before_any_work(tmp_path: Path, family_fasta, path_without_cmalign):
    work = tmp_path / "work"
    with pytest.raises(ToolError, match=r"'cmalign' not found on PATH \(install the 'infernal'"):
        build_msa(family_fasta, tmp_path / "o.sto", work_dir=work)
    assert not (tmp_path / "o.sto").exists()
    assert not work.exists() or not any(work.iterdir())


def test_missing_tool_in_the_cli_is_one_line(tmp_path, family_fasta, path_without_cmalign, capsys):
    code = main(["msa", str(family_fasta), "--out", str(tmp_path / "o.sto")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cmalign" in err[0] and "not found on PATH" in err[0]


def test_xinsi_requested_without_extensions_is_an_error(tmp_path: Path, family_fasta):
    from rinalmo_search.msa.mafft import xinsi_support

    supported, reason = xinsi_support()
    if supported:
        result = build_msa(family_fasta, tmp_path / "x.sto", aligner="xinsi")
        assert result.aligner_used == "xinsi"
    else:
        with pytest.raises(ToolError, match="X-INS-i was requested but is not available"):
            build_msa(family_fasta, tmp_path / "x.sto", aligner="xinsi")
