"""The family-level split the evaluation reads: which families are train, validation or test.

A split is grouped by clan: every family of a clan (or one unclanned family) lands on one side.
Two on-disk forms are read:

* the training pipeline's prepared folder (``rinalmo-search data prepare --out DIR``), whose
  family table names each family's split;
* this module's own form (:func:`write_split`): ``DIR/families.tsv`` with the columns
  ``family clan split n_sequences`` and ``DIR/split.json`` naming the sequence file, the seed and
  the fractions. It stores no sequences: they are read from the Rfam folder it names.

The database of the retrieval protocol is every sequence of every family (train, validation and
test), so that test queries meet the training families as decoys.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rinalmo_search.errors import InputError
from rinalmo_search.seqio import SequenceRecord, atomic_write, read_fasta

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "val": "valid",
                  "validation": "valid", "test": "test", "testing": "test"}


@dataclass
class Split:
    """Sequences with family labels, and the side of the split each family is on.

    Attributes:
        records: every database sequence (all families), with ``family`` and ``clan`` set.
        family_split: family accession → ``"train"``, ``"valid"`` or ``"test"``.
        family_clan: family accession → clan accession (``""`` if unclanned).
        source: where the split was read from (for reports).
        fingerprint: the split's fingerprint (``data prepare`` splits; ``""`` otherwise).
    """

    records: list[SequenceRecord]
    family_split: dict[str, str]
    family_clan: dict[str, str] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    def family_sizes(self) -> Counter[str]:
        """Number of database sequences of each family."""
        return Counter(record.family for record in self.records)

    def families(self, split: str) -> list[str]:
        """Sorted families on one side of the split."""
        return sorted(f for f, s in self.family_split.items() if s == split)

    def queries(
        self,
        split: str,
        *,
        min_family_size: int = 4,
        max_per_family: int | None = None,
        seed: int = 0,
    ) -> list[SequenceRecord]:
        """Query sequences of one side: members of families with ``min_family_size`` members.

        Arguments:
            split: ``"train"``, ``"valid"`` or ``"test"``.
            min_family_size: smallest family (in database sequences) whose members are queries.
            max_per_family: keep at most this many queries per family (a deterministic sample,
                for quick runs); ``None`` keeps all.
            seed: seed of that sample.
        """
        sizes = self.family_sizes()
        chosen = {f for f in self.families(split) if sizes[f] >= min_family_size}
        by_family: dict[str, list[SequenceRecord]] = defaultdict(list)
        for record in self.records:
            if record.family in chosen:
                by_family[record.family].append(record)
        queries: list[SequenceRecord] = []
        rng = np.random.default_rng(seed)
        for family in sorted(by_family):
            members = by_family[family]
            if max_per_family is not None and len(members) > max_per_family:
                picked = sorted(rng.choice(len(members), size=max_per_family, replace=False))
                members = [members[i] for i in picked]
            queries.extend(members)
        return queries


def make_split(
    records: Iterable[SequenceRecord],
    *,
    seed: int = 20240605,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> dict[str, str]:
    """Assign families to train/valid/test, grouped by clan, deterministically.

    Groups (a clan, or one unclanned family) are shuffled with ``seed`` and dealt to test, then
    validation, until each holds its fraction of the families; the rest is training.

    Returns:
        family → split name.

    Raises:
        InputError: a record without a family label, or fractions that do not sum to 1.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise InputError(f"Invalid split fractions: {fractions} (expected three >= 0 summing to 1)")
    group_families: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if not record.family:
            raise InputError(f"{record.source or record.id}: sequence without a family label")
        group_families[record.clan or record.family].add(record.family)
    groups = sorted(group_families)
    order = np.random.default_rng(seed).permutation(len(groups))
    n_families = sum(len(f) for f in group_families.values())
    targets = {"test": fractions[2] * n_families, "valid": fractions[1] * n_families}
    counts = {"test": 0, "valid": 0}
    assignment: dict[str, str] = {}
    for index in order:
        group = groups[index]
        side = "train"
        for candidate in ("test", "valid"):
            if counts[candidate] < targets[candidate]:
                side = candidate
                break
        if side != "train":
            counts[side] += len(group_families[group])
        for family in group_families[group]:
            assignment[family] = side
    return assignment


def write_split(
    out_dir: str | Path,
    assignment: dict[str, str],
    records: Iterable[SequenceRecord],
    *,
    sequences: str | Path,
    seed: int,
) -> Path:
    """Write this module's split form (``families.tsv`` + ``split.json``) into ``out_dir``."""
    out_dir = Path(out_dir)
    sizes: Counter[str] = Counter()
    clans: dict[str, str] = {}
    for record in records:
        sizes[record.family] += 1
        clans[record.family] = record.clan
    with atomic_write(out_dir / "families.tsv") as handle:
        handle.write("family\tclan\tsplit\tn_sequences\n")
        for family in sorted(assignment):
            clan = clans.get(family) or "NA"
            handle.write(f"{family}\t{clan}\t{assignment[family]}\t{sizes[family]}\n")
    meta = {
        "format": "rinalmo-search evaluation split 1",
        "sequences": str(Path(sequences).resolve()),
        "seed": seed,
        "counts": dict(Counter(assignment.values())),
    }
    with atomic_write(out_dir / "split.json") as handle:
        json.dump(meta, handle, indent=2)
    return out_dir


def _read_family_table(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read a tab-separated family table with a family column and a split column."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader((line for line in handle if not line.startswith("#")),
                                   delimiter="\t"))
    if not rows:
        raise InputError(f"{path}: empty family table (expected a header and one row per family)")
    columns = {c.lower(): c for c in rows[0]}
    family_col = next((columns[c] for c in ("family", "accession", "rfam_acc", "family_acc")
                       if c in columns), None)
    split_col = next((columns[c] for c in ("split", "subset", "partition") if c in columns), None)
    clan_col = next((columns[c] for c in ("clan", "clan_acc") if c in columns), None)
    if family_col is None or split_col is None:
        raise InputError(
            f"{path}: expected columns 'family' and 'split', found {sorted(rows[0])}"
        )
    family_split: dict[str, str] = {}
    family_clan: dict[str, str] = {}
    for line_no, row in enumerate(rows, start=2):
        side = _SPLIT_ALIASES.get((row[split_col] or "").strip().lower())
        if side is None:
            raise InputError(
                f"{path}:{line_no}: unknown split {row[split_col]!r} (expected train/valid/test)"
            )
        family = row[family_col].strip()
        family_split[family] = side
        if clan_col:
            clan = (row[clan_col] or "").strip()
            family_clan[family] = "" if clan in ("", "NA") else clan
    return family_split, family_clan


def _find_sequences(split_dir: Path, rfam_dir: Path | None) -> list[Path]:
    meta = split_dir / "split.json"
    if meta.exists():
        named = json.loads(meta.read_text(encoding="utf-8")).get("sequences")
        if named and Path(named).exists():
            return [Path(named)]
    for name in ("sequences.fasta", "all.fasta"):
        if (split_dir / name).exists():
            return [split_dir / name]
    per_split = [split_dir / f"{s}.fasta" for s in SPLITS]
    if all(p.exists() for p in per_split):
        return per_split
    if rfam_dir is not None and (rfam_dir / "sequences.fasta").exists():
        return [rfam_dir / "sequences.fasta"]
    raise InputError(
        f"{split_dir}: no sequences found (expected split.json naming a FASTA, sequences.fasta, "
        f"train/valid/test.fasta, or --rfam-dir with sequences.fasta)"
    )


def _load_prepared(split_dir: Path) -> Split:
    """A folder written by ``rinalmo-search data prepare`` (has ``manifest.json``)."""
    from rinalmo_search.training.prepare import load_split as load_prepared

    prepared = load_prepared(split_dir)
    records = [r for side in prepared.records.values() for r in side]
    family_split = {
        family: _SPLIT_ALIASES[side] for family, side in prepared.family_split.items()
    }
    family_clan = {acc: family.clan for acc, family in prepared.families.items()}
    for record in records:
        record.clan = family_clan.get(record.family, record.clan)
    return Split(records, family_split, family_clan,
                 source=f"{split_dir} ({prepared.fingerprint[:12]})",
                 fingerprint=prepared.fingerprint)


def load_split(split_dir: str | Path, *, rfam_dir: str | Path | None = None) -> Split:
    """Read a split folder (either form, see the module docstring) and its sequences.

    Arguments:
        split_dir: the folder written by ``data prepare`` or by :func:`write_split`.
        rfam_dir: Rfam folder whose ``sequences.fasta`` is used when the split folder holds no
            sequences of its own.

    Raises:
        InputError: no family table, no sequences, or sequences of families the table lacks.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: split folder not found (expected a directory)")
    if (split_dir / "manifest.json").is_file():
        return _load_prepared(split_dir)
    table = next((split_dir / n for n in ("families.tsv", "split.tsv", "families_split.tsv")
                  if (split_dir / n).exists()), None)
    if table is None:
        raise InputError(
            f"{split_dir}: no family table (expected families.tsv with a split column)"
        )
    family_split, family_clan = _read_family_table(table)
    paths = _find_sequences(split_dir, Path(rfam_dir) if rfam_dir else None)
    records = read_fasta(paths)
    unlabelled = [r.id for r in records if not r.family]
    if unlabelled:
        raise InputError(
            f"{paths[0]}: {len(unlabelled)} sequences without family labels (first "
            f"{unlabelled[0]!r}; expected headers '>id RFxxxxx CLxxxxx|NA ...')"
        )
    unknown = sorted({r.family for r in records} - set(family_split))
    if unknown:
        log.warning("%d families of %s are not in %s; they stay in the database as decoys",
                    len(unknown), paths[0], table)
        for family in unknown:
            family_split[family] = "train"
    for record in records:
        family_clan.setdefault(record.family, record.clan)
        if not record.clan and family_clan.get(record.family):
            record.clan = family_clan[record.family]
    return Split(records, family_split, family_clan, source=str(split_dir))
