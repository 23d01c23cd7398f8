"""Fixtures of the evaluation tests: a synthetic family set and a few real Rfam families."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from evaluation_helpers import RFAM, synthetic_records

from rinalmo_search.seqio import read_fasta, write_fasta


@pytest.fixture
def synthetic_fasta(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.fasta"
    write_fasta(synthetic_records(), path)
    return path


@pytest.fixture(scope="session")
def rfam_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FASTA of 24 real Rfam seed families (4-12 members each, 60-160 nt)."""
    source = RFAM / "sequences.fasta"
    if not source.exists():
        pytest.skip(f"shared Rfam data not found at {source} (needed for real-family tests)")
    with (RFAM / "families.tsv").open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    chosen = [r["accession"] for r in rows
              if 4 <= int(r["n_seq_kept"]) <= 12 and 60 <= float(r["median_len"]) <= 160][:24]
    records = [r for r in read_fasta(source) if r.family in set(chosen)]
    path = tmp_path_factory.mktemp("rfam") / "subset.fasta"
    write_fasta(records, path)
    return path
