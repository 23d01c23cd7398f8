"""Fixtures for the MSA tests: simulated families written as FASTA (see simulate.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from msa_simulate import Family, simulate_family  # noqa: E402

INFERNAL_EXAMPLES = Path("/usr/share/doc/infernal/examples/testsuite")


@pytest.fixture(scope="session")
def family() -> Family:
    """Eight simulated sequences with three hairpins and their true alignment."""
    return simulate_family(seed=7, n=8)


@pytest.fixture
def family_fasta(tmp_path: Path, family: Family) -> Path:
    """The simulated family as an unaligned FASTA file."""
    path = tmp_path / "family.fasta"
    path.write_text(family.fasta())
    return path
