"""The retrieval view of a prepared split: one database, queries drawn from one side.

There is one split format, the folder ``rinalmo-search data prepare`` writes, and one reader of
it, :func:`rinalmo_search.training.prepare.load_split`. This module turns what that reader
returns into what the retrieval protocol needs: every sequence of every family (train,
validation and test) as the database, so that test queries meet the training families as
decoys, and the queries of one side.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rinalmo_search.errors import InputError
from rinalmo_search.seqio import SequenceRecord


@dataclass
class RetrievalSet:
    """Sequences with family labels, and the side of the split each family is on.

    Attributes:
        records: every database sequence (all families), with ``family`` and ``clan`` set.
        family_split: family accession → ``"train"``, ``"validation"`` or ``"test"``
            (:data:`rinalmo_search.training.prepare.SPLITS`).
        family_clan: family accession → clan accession (``""`` if unclanned).
        source: where the split was read from (for reports).
        fingerprint: the split's fingerprint (``""`` for sets built in memory).
    """

    records: list[SequenceRecord]
    family_split: dict[str, str]
    family_clan: dict[str, str] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    def family_sizes(self) -> Counter[str]:
        """Number of database sequences of each family."""
        return Counter(record.family for record in self.records)

    def families(self, side: str) -> list[str]:
        """Sorted families on one side of the split."""
        return sorted(f for f, s in self.family_split.items() if s == side)

    def queries(
        self,
        side: str,
        *,
        min_family_size: int = 4,
        max_per_family: int | None = None,
        seed: int = 0,
    ) -> list[SequenceRecord]:
        """Query sequences of one side: members of families with ``min_family_size`` members.

        Arguments:
            side: ``"train"``, ``"validation"`` or ``"test"``.
            min_family_size: smallest family (in database sequences) whose members are queries.
            max_per_family: keep at most this many queries per family (a deterministic sample,
                for quick runs); ``None`` keeps all.
            seed: seed of that sample.
        """
        sizes = self.family_sizes()
        chosen = {f for f in self.families(side) if sizes[f] >= min_family_size}
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


def load_retrieval_set(split_dir: str | Path) -> RetrievalSet:
    """Read a split folder written by ``rinalmo-search data prepare`` as a retrieval set.

    The database holds the split's sequences in the order train, validation, test.

    Raises:
        InputError: the folder is missing or is not a prepared split.
    """
    from rinalmo_search.training.prepare import load_split

    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: split folder not found (expected a directory written "
                         "by 'rinalmo-search data prepare')")
    prepared = load_split(split_dir)
    records = [r for side in prepared.records.values() for r in side]
    family_clan = {acc: family.clan for acc, family in prepared.families.items()}
    for record in records:
        record.clan = family_clan.get(record.family, record.clan)
    return RetrievalSet(records, dict(prepared.family_split), family_clan,
                        source=f"{split_dir} ({prepared.fingerprint[:12]})",
                        fingerprint=prepared.fingerprint)
