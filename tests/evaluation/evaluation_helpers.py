"""Helpers of the evaluation tests: synthetic families with known labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rinalmo_search.seqio import SequenceRecord
from rinalmo_search.simulate import mutate

RFAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rfam"


def synthetic_records(
    n_families: int = 12, members: int = 6, length: int = 90, seed: int = 1
) -> list[SequenceRecord]:
    """Families of mutated copies of random ancestors; families 0 and 1 share clan CL00001."""
    rng = np.random.default_rng(seed)
    records = []
    for f in range(n_families):
        ancestor = "".join(rng.choice(list("ACGU"), size=length))
        family = f"RF{f + 1:05d}"
        clan = "CL00001" if f < 2 else "NA"
        for m in range(members + (f % 3) * 2):
            records.append(SequenceRecord(
                id=f"s{f}_{m}/1-{length}", sequence=mutate(ancestor, rng, rate=0.15),
                description=f"{family} {clan} fam{f}", family=family,
                clan="" if clan == "NA" else clan,
            ))
    return records
