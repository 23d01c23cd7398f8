"""A tiny RNA family simulator: sequences sharing a secondary structure, and their true alignment.

Test fixtures are made here rather than copied from elsewhere: a random ancestor is drawn to fit
a dot-bracket structure, each descendant gets point substitutions (pairs mutate together, as
compensatory changes), and loop positions get insertions and deletions. Because every residue is
traced back to an ancestor column, the true alignment is known exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

PAIRS = ("GC", "CG", "AU", "UA", "GU", "UG")
BASES = "ACGU"


def pair_table(structure: str) -> dict[int, int]:
    """Column → partner column for a dot-bracket string."""
    stack: list[int] = []
    partners: dict[int, int] = {}
    for i, char in enumerate(structure):
        if char in "(<":
            stack.append(i)
        elif char in ")>":
            j = stack.pop()
            partners[i], partners[j] = j, i
    return partners


@dataclass
class Family:
    """Simulated sequences with their reference alignment."""

    names: list[str]
    sequences: list[str]
    reference_rows: list[str]
    reference_structure: str

    def fasta(self) -> str:
        """The unaligned sequences as FASTA text."""
        return "".join(f">{n}\n{s}\n" for n, s in zip(self.names, self.sequences, strict=True))


def simulate_family(
    seed: int,
    n: int,
    *,
    structure: str = "((((((((....))))))))..(((((((......)))))))...((((((.....))))))",
    substitution: float = 0.15,
    indel: float = 0.05,
    prefix: str = "sim",
) -> Family:
    """Simulate ``n`` related sequences on ``structure`` (reproducible from ``seed``)."""
    rng = random.Random(seed)
    partners = pair_table(structure)
    width = len(structure)
    ancestor = [""] * width
    for i in range(width):
        if ancestor[i]:
            continue
        if i in partners:
            pair = rng.choice(PAIRS)
            ancestor[i], ancestor[partners[i]] = pair[0], pair[1]
        else:
            ancestor[i] = rng.choice(BASES)
    # columns: ancestor column index, with insert columns between them per sequence.
    per_sequence: list[list[tuple[int, str]]] = []  # (ancestor column, residue or "-")
    inserts: list[dict[int, str]] = []
    for _ in range(n):
        residues = list(ancestor)
        for i in range(width):
            if i in partners and i < partners[i] and rng.random() < substitution:
                pair = rng.choice(PAIRS)
                residues[i], residues[partners[i]] = pair[0], pair[1]
            elif i not in partners and rng.random() < substitution:
                residues[i] = rng.choice(BASES)
        insert_after: dict[int, str] = {}
        for i in range(width):
            if i in partners:
                continue
            if rng.random() < indel / 2:
                residues[i] = "-"
            elif rng.random() < indel / 2:
                insert_after[i] = "".join(rng.choice(BASES) for _ in range(rng.randint(1, 3)))
        per_sequence.append(list(enumerate(residues)))
        inserts.append(insert_after)
    rows = [[] for _ in range(n)]
    ref_structure: list[str] = []
    for i in range(width):
        for k in range(n):
            rows[k].append(per_sequence[k][i][1])
        ref_structure.append(structure[i])
        for k in range(n):
            # Each sequence's insert gets columns of its own: inserts are not homologous.
            for residue in inserts[k].get(i, ""):
                ref_structure.append(".")
                for other in range(n):
                    rows[other].append(residue if other == k else "-")
    aligned = ["".join(r) for r in rows]
    sequences = [a.replace("-", "") for a in aligned]
    names = [f"{prefix}{k}" for k in range(n)]
    return Family(names, sequences, aligned, "".join(ref_structure))


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    """Write ``(id, sequence)`` pairs as FASTA and return the path."""
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in records))
    return path


def ungapped(row: str) -> str:
    """A Stockholm row without gap characters, upper case."""
    return "".join(c for c in row if c not in "-.~").upper()
