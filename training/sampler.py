"""Family-balanced, clan-aware batches for supervised contrastive training.

A batch holds ``N`` families × up to ``K`` sequences each, plus, for every sampled family that
belongs to a clan, up to ``H`` sequences of *other* families of that clan (hard negatives:
similar RNAs the model must still tell apart). Families are shuffled once per epoch from
``(seed, epoch)``; with DDP, the epoch's batches are dealt round-robin to ranks, so ranks see
disjoint family groups and every rank gets the same number of batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """One batch and how it was made.

    Attributes:
        families: the N families drawn for this batch.
        members: their sampled items (up to K each, family by family).
        negatives: hard negatives: items of other families of the drawn families' clans.
    """

    families: tuple[str, ...]
    members: tuple[int, ...]
    negatives: tuple[int, ...]

    @property
    def indices(self) -> list[int]:
        """Members then negatives, the batch as the loop reads it."""
        return [*self.members, *self.negatives]


class ClanAwareBatchSampler:
    """Yields lists of item indices, one list per batch.

    Families with fewer than ``K`` items contribute all their items (no repeats: a repeated
    sequence would be a trivially easy positive). Families with fewer than two items cannot
    form a positive pair and are never drawn as batch families (they can still appear as hard
    negatives). The last incomplete group of families of an epoch is dropped, and each rank
    gets ``floor(n_batches / world_size)`` batches.

    Arguments:
        families: family label of each item.
        clans: clan of each family label (missing or empty = unclanned).
        families_per_batch: N.
        per_family: K.
        hard_negatives: H, clan-mates of other families added per sampled family.
        seed: base seed; epoch ``e`` uses ``(seed, e)``.
        rank: this process's DDP rank.
        world_size: number of DDP processes.
    """

    def __init__(
        self,
        families: Sequence[str],
        clans: dict[str, str],
        *,
        families_per_batch: int,
        per_family: int,
        hard_negatives: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if families_per_batch < 1 or per_family < 2:
            raise ValueError(
                f"Invalid batch shape: {families_per_batch} families x {per_family} sequences "
                "(expected >= 1 family and >= 2 sequences per family)"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"Invalid rank {rank} for world size {world_size}")
        self.items: dict[str, list[int]] = defaultdict(list)
        for index, family in enumerate(families):
            self.items[family].append(index)
        self.clans = {family: clans.get(family, "") for family in self.items}
        self.clan_members: dict[str, list[str]] = defaultdict(list)
        for family in sorted(self.items):
            if self.clans[family]:
                self.clan_members[self.clans[family]].append(family)
        self.eligible = sorted(f for f, members in self.items.items() if len(members) >= 2)
        if len(self.eligible) < families_per_batch:
            raise ValueError(
                f"Only {len(self.eligible)} families have two or more sequences; a batch needs "
                f"{families_per_batch}"
            )
        self.families_per_batch = families_per_batch
        self.per_family = per_family
        self.hard_negatives = hard_negatives
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (call before iterating, as with ``DistributedSampler``)."""
        self.epoch = epoch

    @property
    def batches_per_epoch(self) -> int:
        """Batches in one epoch, all ranks together."""
        total = len(self.eligible) // self.families_per_batch
        return total - total % self.world_size

    def __len__(self) -> int:
        return self.batches_per_epoch // self.world_size

    def epoch_plan(self, epoch: int) -> list[BatchPlan]:
        """Every rank's batches of ``epoch``, with their parts (rank ``r`` gets ``r::world``)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = [self.eligible[i] for i in rng.permutation(len(self.eligible))]
        plans = []
        for start in range(0, self.batches_per_epoch * self.families_per_batch,
                           self.families_per_batch):
            chosen = order[start : start + self.families_per_batch]
            members: list[int] = []
            for family in chosen:
                items = self.items[family]
                take = min(self.per_family, len(items))
                picks = sorted(rng.choice(len(items), take, replace=False))
                members.extend(items[i] for i in picks)
            in_batch = set(members)
            negatives: list[int] = []
            for family in chosen:
                clan = self.clans[family]
                if not clan or self.hard_negatives == 0:
                    continue
                pool = [
                    index for other in self.clan_members[clan] if other != family
                    for index in self.items[other] if index not in in_batch
                ]
                if pool:
                    take = min(self.hard_negatives, len(pool))
                    picked = [pool[i] for i in sorted(rng.choice(len(pool), take, replace=False))]
                    negatives.extend(picked)
                    in_batch.update(picked)
            plans.append(BatchPlan(tuple(chosen), tuple(members), tuple(negatives)))
        return plans

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every rank's batches of ``epoch`` as index lists (members, then hard negatives)."""
        return [plan.indices for plan in self.epoch_plan(epoch)]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches(self.epoch)[self.rank :: self.world_size]
