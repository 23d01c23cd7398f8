"""Fixtures of the evaluation tests: a synthetic family set and a few real Rfam families."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from evaluation_helpers import RFAM, synthetic_records

from rinalmo_search.seqio import write_fasta


@pytest.fixture
def synthetic_fasta(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.fasta"
    write_fasta(synthetic_records(), path)
    return path


@pytest.fixture(scope="session")
def prepared_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A split written by ``data prepare`` (exact de-dup, 50/25/25) of 24 real Rfam seed
    families (4-12 members each, 60-160 nt)."""
    from rinalmo_search.training.prepare import PrepareOptions, prepare_dataset

    source = RFAM / "sequences.fasta"
    if not source.exists():
        pytest.skip(f"shared Rfam data not found at {source} (needed for real-family tests)")
    with (RFAM / "families.tsv").open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    chosen = [r["accession"] for r in rows
              if 4 <= int(r["n_seq_kept"]) <= 12 and 60 <= float(r["median_len"]) <= 160][:24]
    out = tmp_path_factory.mktemp("prepared") / "split"
    prepare_dataset(RFAM, out, PrepareOptions(dedup="exact", families=chosen,
                                              fractions=(0.5, 0.25, 0.25), seed=11))
    return out
