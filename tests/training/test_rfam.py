"""Readers of Rfam release files, on real seed families and release-format files built from them."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from rinalmo_search.training.rfam import (
    load_rfam_dir,
    read_clanin,
    read_full_region,
    read_labelled_fasta,
    read_seed_records,
)

from rinalmo_search.errors import InputError
from rinalmo_search.seqio import read_fasta, write_fasta

TRNA_CLAN = ["RF00005", "RF00023", "RF01852"]  # tRNA, tmRNA, tRNA-Sec: clan CL00001


@pytest.fixture(scope="module")
def seed_fasta(shared_rfam: Path) -> dict[str, list]:
    """The shared sequences.fasta records of the families used here, by family."""
    wanted = set(TRNA_CLAN) | {"RF00001"}
    by_family: dict[str, list] = {f: [] for f in wanted}
    for record in read_fasta(shared_rfam / "sequences.fasta"):
        if record.family in wanted:
            by_family[record.family].append(record)
    return by_family


def test_stockholm_seed_matches_the_published_fasta(shared_rfam: Path, seed_fasta) -> None:
    families: dict = {}
    records = list(read_seed_records(shared_rfam / "seeds" / "RF00005.sto", families))
    assert families["RF00005"].name == "tRNA"
    assert families["RF00005"].clan == "CL00001"
    assert {(r.id, r.sequence) for r in records} == {
        (r.id, r.sequence) for r in seed_fasta["RF00005"]
    }
    assert all(r.family == "RF00005" for r in records)


def test_release_layout_seed_gz_and_clanin(shared_rfam: Path, tmp_path: Path, seed_fasta) -> None:
    # a release-style folder: one gzipped Rfam.seed holding several families, and Rfam.clanin
    with gzip.open(tmp_path / "Rfam.seed.gz", "wt") as handle:
        for accession in [*TRNA_CLAN, "RF00001"]:
            handle.write((shared_rfam / "seeds" / f"{accession}.sto").read_text())
    shutil.copy(shared_rfam / "Rfam.clanin", tmp_path / "Rfam.clanin")
    data = load_rfam_dir(tmp_path)
    assert sorted(data.families) == sorted([*TRNA_CLAN, "RF00001"])
    assert {data.families[a].clan for a in TRNA_CLAN} == {"CL00001"}
    assert data.families["RF00001"].clan == "CL00113"
    assert len(data.records) == sum(len(v) for v in seed_fasta.values())
    assert all(r.clan == data.families[r.family].clan for r in data.records)
    assert tmp_path / "Rfam.seed.gz" in data.sources


def test_clanin_names_become_accessions(shared_rfam: Path) -> None:
    clans = read_clanin(shared_rfam / "Rfam.clanin")
    assert "tRNA" in clans["CL00001"] and "tmRNA" in clans["CL00001"]
    assert all(key.startswith("CL") for key in clans)


def test_full_region_labels_a_plain_fasta(tmp_path: Path, seed_fasta) -> None:
    # Rfam.full_region rows (rfam_acc, rfamseq_acc, start, end, bits, evalue, cm_start,
    # cm_end, truncated, type) for the 5S seed regions; the FASTA headers carry no label
    records = seed_fasta["RF00001"][:5]
    rows = []
    for record in records:
        accession, _, span = record.id.partition("/")
        start, end = span.split("-")
        rows.append(f"RF00001\t{accession}\t{start}\t{end}\t80.1\t1e-15\t1\t119\t0\tseed\n")
    (tmp_path / "Rfam.full_region").write_text("".join(rows))
    plain = [type(r)(id=r.id, sequence=r.sequence) for r in records]
    plain.append(type(records[0])(id="unrelated/1-80", sequence="ACGU" * 20))
    write_fasta(plain, tmp_path / "Rfam.fa")
    regions = read_full_region(tmp_path / "Rfam.full_region")
    labelled = list(read_labelled_fasta(tmp_path / "Rfam.fa", regions))
    assert [r.id for r in labelled] == [r.id for r in records]
    assert {r.family for r in labelled} == {"RF00001"}
    data = load_rfam_dir(tmp_path)  # Rfam.fa + Rfam.full_region: the "full" source
    assert len(data.records) == 5


def test_per_family_fasta_files(tmp_path: Path, seed_fasta) -> None:
    folder = tmp_path / "fasta_files"
    folder.mkdir()
    for accession in TRNA_CLAN:
        plain = tmp_path / "plain.fa"
        write_fasta([type(r)(id=r.id, sequence=r.sequence) for r in seed_fasta[accession]], plain)
        with gzip.open(folder / f"{accession}.fa.gz", "wb") as handle:
            handle.write(plain.read_bytes())
    data = load_rfam_dir(tmp_path, source="full")
    assert sorted({r.family for r in data.records}) == sorted(TRNA_CLAN)
    assert len(data.records) == sum(len(seed_fasta[a]) for a in TRNA_CLAN)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Rfam folder not found"):
        load_rfam_dir(tmp_path / "absent")
    with pytest.raises(InputError, match="no sequence files found"):
        load_rfam_dir(tmp_path)
    (tmp_path / "Rfam.clanin").write_text("tRNA\tCL00001\n")
    with pytest.raises(InputError, match=r"Rfam.clanin:1: expected a clan accession.*'tRNA'"):
        read_clanin(tmp_path / "Rfam.clanin")
    (tmp_path / "Rfam.full_region").write_text("RF00001\tX01556.1\n")
    with pytest.raises(InputError, match=r"Rfam.full_region:1: expected 'rfam_acc"):
        read_full_region(tmp_path / "Rfam.full_region")
