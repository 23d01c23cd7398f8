"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rinalmo_search.seqio import write_fasta
from rinalmo_search.simulate import simulated_families

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_RFAM = REPO_ROOT.parent / "shared" / "data" / "rfam"


@pytest.fixture(scope="session")
def shared_rfam() -> Path:
    """The read-only Rfam seed folder beside the project (never copied into it)."""
    if not (SHARED_RFAM / "sequences.fasta").is_file():
        pytest.skip(f"shared Rfam data not found at {SHARED_RFAM}")
    return SHARED_RFAM


@pytest.fixture
def family_fasta(tmp_path: Path) -> Path:
    """Six simulated families of eight members each, written as labelled FASTA."""
    path = tmp_path / "families.fasta"
    write_fasta(simulated_families(6, 8, length=100, rate=0.05, seed=7), path)
    return path
