"""Write the tiny, deterministic inputs used by the Galaxy wrappers' ``<tests>``.

Sequences are simulated, not taken from Rfam: each family is a random ancestor (70-90 nt)
from which members are derived by :func:`rinalmo_search.simulate.mutate` (substitutions, and
single-base indels at a tenth of their rate), so members of a family share most of their k-mers
and members of different families share few. Running the
script again rewrites byte-identical files (``tests/galaxy/test_tool_parsing.py`` checks this).

Usage: python tests/galaxy/make_test_data.py [OUT_DIR]
(default: galaxy_tools/rinalmo_search/test-data)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rinalmo_search.simulate import mutate

SEED = 20261125
ALPHABET = "ACGU"
#: (family accession, clan accession or "NA", family name) of the simulated families.
FAMILIES = [
    ("RF90001", "CL90001", "simA"),
    ("RF90002", "CL90001", "simB"),
    ("RF90003", "NA", "simC"),
]
MEMBERS_PER_FAMILY = 5
#: :func:`~rinalmo_search.simulate.mutate` rate of each member (and held-out copy).
MUTATION_RATE = 0.1
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "galaxy_tools" / "rinalmo_search" / "test-data"


def random_sequence(rng: np.random.Generator, length: int) -> str:
    """A uniformly random RNA sequence of ``length`` nt."""
    return "".join(rng.choice(list(ALPHABET), size=length))


def mutated(ancestor: str, rng: np.random.Generator) -> str:
    """A mutated copy of ``ancestor``."""
    return mutate(ancestor, rng, rate=MUTATION_RATE)


def fasta(records: list[tuple[str, str, str]]) -> str:
    """FASTA text of ``(id, description, sequence)`` records, 60 residues a line."""
    lines: list[str] = []
    for record_id, description, sequence in records:
        lines.append(f">{record_id} {description}".rstrip())
        lines.extend(sequence[i : i + 60] for i in range(0, len(sequence), 60))
    return "\n".join(lines) + "\n"


#: Families of the tiny Rfam-format release used by the training tool's test.
SEED_FAMILIES = 10
SEED_MEMBERS = 6


def stockholm_seed(rng: np.random.Generator) -> tuple[str, str]:
    """A multi-family ``Rfam.seed``-style Stockholm text and its ``Rfam.clanin`` text.

    Families come in clan pairs (1+2, 3+4, ...) whose ancestors share half their sequence, so
    clan-mates are harder negatives than unrelated families, as in Rfam.
    """
    blocks: list[str] = []
    clans: dict[str, list[str]] = {}
    shared = ""
    for index in range(1, SEED_FAMILIES + 1):
        accession, name = f"RF991{index:02d}", f"simSeed{index}"
        clan = f"CL991{(index + 1) // 2:02d}" if index <= 6 else ""
        if index % 2:
            shared = random_sequence(rng, 40)
        length = int(rng.integers(40, 51)) + (0 if clan else 40)
        ancestor = (shared if clan else "") + random_sequence(rng, length)
        members = [mutated(ancestor, rng) for _ in range(SEED_MEMBERS)]
        width = max(len(member) for member in members)
        lines = ["# STOCKHOLM 1.0", f"#=GF ID   {name}", f"#=GF AC   {accession}",
                 f"#=GF DE   simulated family {index}", "#=GF TP   Gene;"]
        if clan:
            lines.append(f"#=GF CL   {clan}")
            clans.setdefault(clan, []).append(name)
        for number, member in enumerate(members, start=1):
            lines.append(f"{name}_{number}/1-{len(member):<6} {member.ljust(width, '.')}")
        lines.append("//")
        blocks.append("\n".join(lines))
    clanin = "".join(f"{clan}\t" + "\t".join(names) + "\n" for clan, names in clans.items())
    return "\n".join(blocks) + "\n", clanin


def build(rng: np.random.Generator) -> dict[str, str]:
    """File name → content of every generated test-data file."""
    ancestors = {name: random_sequence(rng, int(rng.integers(70, 91))) for _, _, name in FAMILIES}
    labelled: list[tuple[str, str, str]] = []
    unlabelled: list[tuple[str, str, str]] = []
    labels = ["id\tfamily\tclan"]
    for family, clan, name in FAMILIES:
        for index in range(1, MEMBERS_PER_FAMILY + 1):
            record_id = f"{name}_{index}"
            sequence = mutated(ancestors[name], rng)
            labelled.append((record_id, f"{family} {clan} simulated {name} member", sequence))
            unlabelled.append((f"new_{record_id}", "", mutated(sequence, rng)))
            labels.append(f"new_{record_id}\t{family}\t{clan}")
    # Query ids carry characters the CLI replaces with '_' in per-query folder names.
    queries = [
        ("query|simA", "held-out member of simA", mutated(ancestors["simA"], rng)),
        ("query|simC", "held-out member of simC", mutated(ancestors["simC"], rng)),
    ]
    msa_input = [(r_id, "", seq) for r_id, desc, seq in labelled if r_id.startswith("simB_")]
    seed, clanin = stockholm_seed(rng)
    return {
        "rfam_tiny.seed.sto": seed,
        "rfam_tiny.clanin": clanin,
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
    for name, text in build(np.random.default_rng(SEED)).items():
        (out / name).write_text(text, encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
