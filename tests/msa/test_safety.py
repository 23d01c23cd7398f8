"""What ``msa`` must never do: lose finished work, overwrite its input, write a Stockholm file
Infernal rejects, fail cryptically on a tiny input, or leave programs and folders behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from msa_simulate import ungapped, write_fasta

import rinalmo_search.msa.pipeline as pipeline
from rinalmo_search.cli import main
from rinalmo_search.errors import ConfigError, ToolError
from rinalmo_search.msa import build_msa
from rinalmo_search.msa.stockholm import read_stockholm
from rinalmo_search.tools import run_tool

# --- a later Infernal round fails --------------------------------------------------------------


def test_a_failing_later_round_keeps_the_previous_round(tmp_path, family, family_fasta,
                                                        monkeypatch):
    # TEST DOUBLE: cmbuild of round 2 fails as the real one did on one 5,000-nt sequence among
    # 8 tRNA seeds ("Z got insanely large", after minutes); rounds 1 and 3+ run the real one.
    real_cmbuild = pipeline.cmbuild

    def cmbuild_failing_in_round_2(stockholm: Path, cm: Path) -> list[str]:
        if cm.name == "round2.cm":
            raise ToolError("cmbuild failed with exit status 1 (cmbuild ...)",
                            command=["/usr/bin/cmbuild", str(cm), str(stockholm)],
                            stderr="Error: Z got insanely large. It's over 1000\n")
        return real_cmbuild(stockholm, cm)

    monkeypatch.setattr(pipeline, "cmbuild", cmbuild_failing_in_round_2)
    out = tmp_path / "kept.sto"
    result = build_msa(family_fasta, out, aligner="linsi", rounds=3)
    alignment = read_stockholm(out)
    assert [ungapped(row) for row in alignment.rows] == family.sequences
    expected = ("Infernal round 2 of 3 failed (cmbuild: Error: Z got insanely large. It's over "
                "1000); kept the alignment of round 1")
    assert expected in result.warnings
    comments = alignment.gf_values("CC")
    assert f"Warning: {expected}" in comments
    assert any(c.startswith("Infernal rounds: 1 ") for c in comments)


def test_a_failing_first_round_is_still_an_error(tmp_path, family_fasta, monkeypatch):
    def cmbuild_failing(stockholm: Path, cm: Path) -> list[str]:  # TEST DOUBLE
        raise ToolError("cmbuild failed", command=["cmbuild"], stderr="Error: boom\n")

    monkeypatch.setattr(pipeline, "cmbuild", cmbuild_failing)
    with pytest.raises(ToolError, match="Error: boom"):
        build_msa(family_fasta, tmp_path / "o.sto", aligner="linsi")
    assert not (tmp_path / "o.sto").exists()


# --- inputs refused before any program runs ---------------------------------------------------


@pytest.fixture
def no_programs(monkeypatch) -> list[list[str]]:
    """Records every program run_tool would start, and starts none."""
    started: list[list[str]] = []

    def refuse(command, **_):  # TEST DOUBLE of rinalmo_search.tools.run_tool
        started.append([str(part) for part in command])
        raise AssertionError(f"a program ran: {command}")

    for module in ("rinalmo_search.msa.mafft", "rinalmo_search.msa.infernal",
                   "rinalmo_search.msa.structure"):
        monkeypatch.setattr(f"{module}.run_tool", refuse, raising=False)
    return started


@pytest.mark.parametrize("records", [[("tiny", "A")], [("a", "G"), ("b", "C")]])
def test_one_nt_input_is_refused_in_one_line(tmp_path, capsys, no_programs, records):
    fasta = write_fasta(tmp_path / "tiny.fasta", records)
    code = main(["msa", str(fasta), "--out", str(tmp_path / "o.sto")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and no_programs == []
    assert err == [f"rinalmo-search: error: {fasta}: every sequence is shorter than 2 nt "
                   f"(longest: {records[0][0]!r}, 1 nt); Infernal cannot build a model of one "
                   "column"]
    assert not (tmp_path / "o.sto").exists()


def test_one_nt_sequence_among_longer_ones_is_aligned(tmp_path, family):
    records = [("q", family.sequences[0]), ("one", "A"), ("h", family.sequences[1])]
    fasta = write_fasta(tmp_path / "in.fasta", records)
    build_msa(fasta, tmp_path / "o.sto", aligner="linsi", rounds=1)
    alignment = read_stockholm(tmp_path / "o.sto")
    assert [ungapped(row) for row in alignment.rows] == [s for _, s in records]


@pytest.mark.parametrize("bad_id", ["#1", "#=GS", "//x"])
def test_id_that_stockholm_cannot_hold_is_refused_with_file_and_line(
    tmp_path, family, capsys, no_programs, bad_id
):
    records = [("q", family.sequences[0]), (bad_id, family.sequences[1])]
    fasta = write_fasta(tmp_path / "in.fasta", records)
    code = main(["msa", str(fasta), "--out", str(tmp_path / "o.sto")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and no_programs == []
    assert len(err) == 1
    assert f"{fasta}:3: id {bad_id!r} starts with" in err[0] and "rename the record" in err[0]
    assert not (tmp_path / "o.sto").exists()


def test_id_with_a_hash_inside_is_kept(tmp_path, family):
    records = [("q#1", family.sequences[0]), ("h", family.sequences[1])]
    fasta = write_fasta(tmp_path / "in.fasta", records)
    build_msa(fasta, tmp_path / "o.sto", aligner="linsi", rounds=1)
    assert read_stockholm(tmp_path / "o.sto").names == ["q#1", "h"]
    run_tool(["cmbuild", "-F", tmp_path / "o.cm", tmp_path / "o.sto"])  # Infernal reads it


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused(tmp_path, family_fasta, no_programs, link):
    before = family_fasta.read_bytes()
    out = family_fasta
    if link == "symlink":
        out = tmp_path / "link.sto"
        out.symlink_to(family_fasta)
    elif link == "hardlink":
        out = tmp_path / "hard.sto"
        os.link(family_fasta, out)
    with pytest.raises(ConfigError, match="is the input .*refusing to overwrite an input"):
        build_msa(family_fasta, out)
    assert family_fasta.read_bytes() == before and no_programs == []


def test_output_that_is_a_folder_is_refused_before_any_work(tmp_path, family_fasta,
                                                            no_programs):
    with pytest.raises(ConfigError, match=r"is a folder \(expected a file name\)"):
        build_msa(family_fasta, tmp_path)
    assert no_programs == []


# --- SIGINT / SIGTERM --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def slow_cmbuild(tmp_path: Path, monkeypatch) -> Path:
    """TEST DOUBLE: a ``cmbuild`` first on PATH that starts a grandchild and waits on it (as
    MAFFT's scripts do), writing ``<its pid> <the grandchild's pid>`` to the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "cmbuild.pids"
    script = bin_dir / "cmbuild"
    script.write_text(f'#!/bin/sh\nsleep 300 &\necho "$$ $!" > {marker}.tmp\n'
                      f"mv {marker}.tmp {marker}\nwait\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return marker


def _as_in_a_terminal() -> None:
    """Ctrl-C as in a foreground terminal: a test run started in the background (``cmd &``,
    ``nohup``) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_programs_and_removes_the_work_folder(
    tmp_path, family_fasta, slow_cmbuild, signum
):
    work, out = tmp_path / "work", tmp_path / "o.sto"
    process = subprocess.Popen(
        [sys.executable, "-m", "rinalmo_search", "msa", str(family_fasta), "--out", str(out),
         "--aligner", "linsi", "--work-dir", str(work)],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal,
    )
    try:
        assert _wait_for(slow_cmbuild.exists, 60), "the cmbuild double never started"
        pids = [int(pid) for pid in slow_cmbuild.read_text().split()]
        clock = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=30)
        seconds = time.monotonic() - clock
    finally:
        process.kill()
        process.wait()
    assert seconds < 5
    assert code == 130 and "rinalmo-search: interrupted" in process.stderr.read()
    assert _wait_for(lambda: not any(_alive(pid) for pid in pids), 2), "a program was left"
    assert list(work.iterdir()) == [] and not out.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_consensus_fold_acts_at_once(tmp_path, signum):
    # RNAalifold holds the interpreter for the whole fold; on two 2,000-nt sequences that is
    # tens of seconds, which Ctrl-C waited for when the fold ran in this process.
    rng = random.Random(3)
    first = "".join(rng.choice("ACGU") for _ in range(2000))
    second = first[:900] + "".join(rng.choice("ACGU") for _ in range(40)) + first[940:]
    fasta = write_fasta(tmp_path / "long.fasta", [("a", first), ("b", second)])
    work = tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "rinalmo_search", "msa", str(fasta), "--out",
         str(tmp_path / "o.sto"), "--aligner", "linsi", "--work-dir", str(work), "-vv"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal,
    )
    try:
        assert _wait_for(lambda: any(work.glob("*/draft.fasta")), 120), "MAFFT never finished"
        time.sleep(1.0)  # into the fold
        clock = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=120)
        seconds = time.monotonic() - clock
    finally:
        process.kill()
        process.wait()
    assert "RNAalifold" in process.stderr.read()
    assert code == 130 and seconds < 5
    assert list(work.iterdir()) == []


def test_a_relative_work_folder_works(tmp_path, family, family_fasta, monkeypatch):
    # MAFFT runs inside the work folder; a relative --work-dir once gave it a wrong input path
    monkeypatch.chdir(tmp_path)
    code = main(["msa", str(family_fasta), "--out", "o.sto", "--aligner", "linsi",
                 "--rounds", "1", "--work-dir", "scratch"])
    assert code == 0
    assert [ungapped(r) for r in read_stockholm(tmp_path / "o.sto").rows] == family.sequences
    assert list((tmp_path / "scratch").iterdir()) == []


def test_out_dash_writes_the_alignment_to_standard_output(tmp_path, family, family_fasta,
                                                          capsys):
    code = main(["msa", str(family_fasta), "--out", "-", "--aligner", "linsi", "--rounds", "1"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("# STOCKHOLM 1.0\n#=GF ID msa\n")
    path = tmp_path / "from_stdout.sto"
    path.write_text(out)
    assert [ungapped(r) for r in read_stockholm(path).rows] == family.sequences
    assert not (tmp_path / "-").exists()
