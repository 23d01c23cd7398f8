"""build_msa and the ``msa`` command with the real MAFFT, ViennaRNA and Infernal."""

from __future__ import annotations

from pathlib import Path

from msa_simulate import ungapped

from rinalmo_search.cli import main
from rinalmo_search.evaluation.msa_metrics import base_pair_f1, score_alignment
from rinalmo_search.msa import build_msa
from rinalmo_search.msa.mafft import xinsi_support
from rinalmo_search.msa.stockholm import Stockholm, read_stockholm
from rinalmo_search.msa.structure import consensus_structure


def test_build_msa_writes_structure_annotated_stockholm(tmp_path: Path, family, family_fasta):
    out = tmp_path / "final_msa.sto"
    result = build_msa(family_fasta, out, threads=2)

    alignment = read_stockholm(out)
    assert result.path == out and result.n_sequences == len(family.names)
    assert alignment.names == family.names  # query (first record) first, input order kept
    assert [ungapped(r) for r in alignment.rows] == family.sequences
    ss = alignment.gc["SS_cons"]
    assert len(ss) == alignment.width
    assert ss.count("<") + ss.count("(") >= 10  # the three simulated stems are found
    assert ss.count("<") + ss.count("(") == ss.count(">") + ss.count(")")
    comments = alignment.gf_values("CC")
    expected = "MAFFT X-INS-i" if xinsi_support()[0] else "MAFFT L-INS-i"
    assert f"Aligner used: {expected}" in comments
    assert result.aligner_used == ("xinsi" if xinsi_support()[0] else "linsi")
    assert any(c.startswith("Query: sim0") for c in comments)
    methods = " | ".join(alignment.gf_values("BM"))
    for piece in ("mafft", "RNA.alifold", "cmbuild -F", "cmalign --cpu 2 --mxsize"):
        assert piece in methods
    # whole homologs, not fragments: cmalign runs without truncated alignment
    (cmalign_line,) = [m for m in alignment.gf_values("BM") if m.startswith("cmalign")]
    assert "--notrunc" in cmalign_line.split()
    assert "Infernal 1.1" in " ".join(comments)
    (rounds,) = [c for c in comments if c.startswith("Infernal rounds:")]
    assert 1 <= int(rounds.split()[2]) <= 3


def test_alignment_is_close_to_the_true_one(tmp_path: Path, family, family_fasta):
    # the simulator knows the true alignment and structure of its family
    build_msa(family_fasta, tmp_path / "final.sto", threads=2)
    test = read_stockholm(tmp_path / "final.sto")
    truth = Stockholm(names=family.names, rows=family.reference_rows,
                      gc={"SS_cons": family.reference_structure})
    scores = score_alignment(test, truth)
    assert scores.n_shared == len(family.names)
    assert scores.sps >= 0.85
    assert base_pair_f1(test, truth) >= 0.8


def test_auto_falls_back_to_linsi_with_a_warning_when_xinsi_is_missing(tmp_path, family_fasta):
    supported, reason = xinsi_support()
    result = build_msa(family_fasta, tmp_path / "a.sto", aligner="auto")
    if supported:
        assert result.aligner_used == "xinsi" and not result.warnings
    else:
        assert result.aligner_used == "linsi"
        assert len(result.warnings) == 1 and "L-INS-i" in result.warnings[0]
        assert reason in result.warnings[0]
        text = (tmp_path / "a.sto").read_text()
        assert "#=GF CC Warning: MAFFT X-INS-i not available" in text


def test_work_folder_removed_unless_kept(tmp_path: Path, family_fasta):
    scratch = tmp_path / "scratch"
    build_msa(family_fasta, tmp_path / "a.sto", aligner="linsi", work_dir=scratch)
    assert list(scratch.iterdir()) == []
    kept = build_msa(family_fasta, tmp_path / "b.sto", aligner="linsi", work_dir=scratch,
                     keep_work=True)
    assert kept.work_dir is not None and kept.work_dir.parent == scratch
    names = {p.name for p in kept.work_dir.iterdir()}
    assert {"draft.fasta", "draft.sto", "draft.cm", "cmalign.sto"} <= names
    draft = read_stockholm(kept.work_dir / "draft.sto")
    # the draft's SS_cons is exactly RNAalifold's structure of the draft rows
    assert draft.gc["SS_cons"] == consensus_structure(draft.rows)[0]


def test_msa_command(tmp_path: Path, family, family_fasta, capsys):
    out = tmp_path / "cli.sto"
    code = main(["msa", str(family_fasta), "--out", str(out), "--threads", "2",
                 "--aligner", "linsi"])
    assert code == 0
    alignment = read_stockholm(out)
    assert alignment.names == family.names
    assert "Aligner used: MAFFT L-INS-i" in alignment.gf_values("CC")


def test_msa_command_reports_bad_input_in_one_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">x\nACGUZ\n")
    code = main(["msa", str(bad), "--out", str(tmp_path / "o.sto")])
    assert code == 1
    err = capsys.readouterr().err
    assert "invalid residue 'Z'" in err and "bad.fasta:2" in err
    assert not (tmp_path / "o.sto").exists()


def test_ginsi_draft_is_recorded(tmp_path: Path, family, family_fasta):
    result = build_msa(family_fasta, tmp_path / "g.sto", aligner="ginsi")
    alignment = read_stockholm(tmp_path / "g.sto")
    assert result.aligner_used == "ginsi" and result.warnings == []
    assert "Aligner used: MAFFT G-INS-i" in alignment.gf_values("CC")
    assert any(m.startswith("mafft --globalpair --maxiterate 1000") for m in
               alignment.gf_values("BM"))
    assert [ungapped(r) for r in alignment.rows] == family.sequences


def test_fragments_option_lets_cmalign_truncate(tmp_path: Path, family, family_fasta):
    out = tmp_path / "fragments.sto"
    code = main(["msa", str(family_fasta), "--out", str(out), "--aligner", "linsi",
                 "--fragments", "--rounds", "1"])
    assert code == 0
    alignment = read_stockholm(out)
    (cmalign_line,) = [m for m in alignment.gf_values("BM") if m.startswith("cmalign")]
    assert "--notrunc" not in cmalign_line.split()
    assert [ungapped(r) for r in alignment.rows] == family.sequences
