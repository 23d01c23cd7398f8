"""Write the tiny, deterministic inputs used by the Galaxy wrappers' ``<tests>``.

Sequences are simulated, not taken from Rfam: each family is a random ancestor (70-90 nt)
from which members are derived by point substitutions and single-base indels, so members of a
family share most of their k-mers and members of different families share few. Running the
script again rewrites byte-identical files (``tests/galaxy/test_tool_parsing.py`` checks this).

Usage: python tests/galaxy/make_test_data.py [OUT_DIR]
(default: galaxy_tools/rinalmo_search/test-data)
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20261125
ALPHABET = "ACGU"
#: (family accession, clan accession or "NA", family name) of the simulated families.
FAMILIES = [
    ("RF90001", "CL90001", "simA"),
    ("RF90002", "CL90001", "simB"),
    ("RF90003", "NA", "simC"),
]
MEMBERS_PER_FAMILY = 5
SUBSTITUTION_RATE = 0.08
INDEL_RATE = 0.02
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "galaxy_tools" / "rinalmo_search" / "test-data"


def mutate(sequence: str, rng: random.Random) -> str:
    """Copy ``sequence`` with random substitutions and single-base insertions/deletions."""
    out: list[str] = []
    for base in sequence:
        roll = rng.random()
        if roll < INDEL_RATE / 2:
            continue
        if roll < INDEL_RATE:
            out.append(rng.choice(ALPHABET))
        if rng.random() < SUBSTITUTION_RATE:
            base = rng.choice([b for b in ALPHABET if b != base])
        out.append(base)
    return "".join(out)


def fasta(records: list[tuple[str, str, str]]) -> str:
    """FASTA text of ``(id, description, sequence)`` records, 60 residues a line."""
    lines: list[str] = []
    for record_id, description, sequence in records:
        lines.append(f">{record_id} {description}".rstrip())
        lines.extend(sequence[i : i + 60] for i in range(0, len(sequence), 60))
    return "\n".join(lines) + "\n"


def build(rng: random.Random) -> dict[str, str]:
    """File name → content of every generated test-data file."""
    ancestors = {name: "".join(rng.choice(ALPHABET) for _ in range(rng.randint(70, 90)))
                 for _, _, name in FAMILIES}
    labelled: list[tuple[str, str, str]] = []
    unlabelled: list[tuple[str, str, str]] = []
    labels = ["id\tfamily\tclan"]
    for family, clan, name in FAMILIES:
        for index in range(1, MEMBERS_PER_FAMILY + 1):
            record_id = f"{name}_{index}"
            sequence = mutate(ancestors[name], rng)
            labelled.append((record_id, f"{family} {clan} simulated {name} member", sequence))
            unlabelled.append((f"new_{record_id}", "", mutate(sequence, rng)))
            labels.append(f"new_{record_id}\t{family}\t{clan}")
    # Query ids carry characters the CLI replaces with '_' in per-query folder names.
    queries = [
        ("query|simA", "held-out member of simA", mutate(ancestors["simA"], rng)),
        ("query|simC", "held-out member of simC", mutate(ancestors["simC"], rng)),
    ]
    msa_input = [(r_id, "", seq) for r_id, desc, seq in labelled if r_id.startswith("simB_")]
    return {
        "targets.fasta": fasta(labelled),
        "new_sequences.fasta": fasta(unlabelled[::3]),
        "new_sequences_labels.tsv": "\n".join(labels[:1] + labels[1::3]) + "\n",
        "queries.fasta": fasta(queries),
        "query_single.fasta": fasta(queries[:1]),
        "msa_input.fasta": fasta(msa_input),
    }


def main(argv: list[str]) -> int:
    """Write the files into ``argv[1]`` (or the default test-data folder)."""
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    for name, text in build(random.Random(SEED)).items():
        (out / name).write_text(text, encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
