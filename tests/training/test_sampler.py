"""Batch composition of the clan-aware sampler, across epochs and DDP ranks."""

from __future__ import annotations

from collections import Counter

import pytest
from rinalmo_search.training.sampler import ClanAwareBatchSampler

# 12 families: sizes 1..12; families F0-F3 form clan CA, F4-F5 clan CB, the rest unclanned.
FAMILIES = [f"F{f}" for f in range(12) for _ in range(f + 1)]
CLANS = {"F0": "CA", "F1": "CA", "F2": "CA", "F3": "CA", "F4": "CB", "F5": "CB"}
SIZES = Counter(FAMILIES)


def make(**options) -> ClanAwareBatchSampler:
    values = {"families_per_batch": 3, "per_family": 4, "hard_negatives": 2, "seed": 5}
    values.update(options)
    return ClanAwareBatchSampler(FAMILIES, CLANS, **values)


@pytest.mark.parametrize(("n", "k", "h"), [(3, 4, 2), (2, 8, 3), (5, 2, 0)])
def test_batch_composition(n: int, k: int, h: int) -> None:
    sampler = make(families_per_batch=n, per_family=k, hard_negatives=h)
    assert sampler.eligible == sorted(f for f, size in SIZES.items() if size >= 2)  # not F0
    assert len(sampler) == len(sampler.eligible) // n
    for epoch in range(4):
        sampler.set_epoch(epoch)
        plans = sampler.epoch_plan(epoch)
        assert [p.indices for p in plans] == list(sampler)
        drawn = [f for p in plans for f in p.families]
        assert len(drawn) == len(set(drawn)) == len(plans) * n  # each family once per epoch
        for plan in plans:
            batch = plan.indices
            assert len(batch) == len(set(batch)), "an item repeated inside a batch"
            member_families = Counter(FAMILIES[i] for i in plan.members)
            # K of each drawn family, or all of a family smaller than K
            assert member_families == {f: min(k, SIZES[f]) for f in plan.families}
            clans_drawn = {CLANS.get(f) for f in plan.families} - {None}
            for index in plan.negatives:
                family = FAMILIES[index]
                assert CLANS.get(family) in clans_drawn
            for family in plan.families:
                clan = CLANS.get(family)
                clan_pool = [
                    i for i, f in enumerate(FAMILIES) if CLANS.get(f) == clan and f != family
                ]
                if clan is None or h == 0:
                    continue
                # at least one negative of the clan whenever the clan has spare items
                if set(clan_pool) - set(plan.members):
                    assert any(FAMILIES[i] != family and CLANS.get(FAMILIES[i]) == clan
                               for i in plan.negatives)
            if h == 0:
                assert plan.negatives == ()


def test_small_family_contributes_all_its_members() -> None:
    sampler = make(families_per_batch=1, per_family=8, hard_negatives=3)
    plans = {p.families[0]: p for p in sampler.epoch_plan(0)}
    assert [FAMILIES[i] for i in plans["F2"].members] == ["F2"] * 3
    assert len(plans["F2"].negatives) == 3
    assert {FAMILIES[i] for i in plans["F2"].negatives} <= {"F0", "F1", "F3"}
    assert [FAMILIES[i] for i in plans["F9"].members] == ["F9"] * 8
    assert plans["F9"].negatives == ()


def test_epochs_differ_and_are_reproducible() -> None:
    a, b = make(), make()
    assert a.epoch_batches(1) == b.epoch_batches(1)
    assert a.epoch_batches(1) != a.epoch_batches(2)
    assert make(seed=6).epoch_batches(1) != a.epoch_batches(1)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_get_disjoint_batches(world: int) -> None:
    single = make(families_per_batch=2)
    samplers = [make(families_per_batch=2, rank=r, world_size=world) for r in range(world)]
    for epoch in range(3):
        per_rank = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            per_rank.append(list(sampler))
        assert len({len(batches) for batches in per_rank}) == 1, "unequal batch counts"
        assert len(per_rank[0]) == single.batches_per_epoch // world
        dealt = [tuple(b) for batches in per_rank for b in batches]
        assert len(dealt) == len(set(dealt)), "a batch was dealt to two ranks"
        # the ranks together see the single-process epoch's batches (less the remainder)
        assert set(dealt) == {tuple(b) for b in single.epoch_batches(epoch)[: len(dealt)]}
        drawn = [f for s in samplers for p in s.epoch_plan(epoch)[s.rank :: world]
                 for f in p.families]
        assert len(drawn) == len(set(drawn)), "a family was drawn by two ranks in one epoch"


def test_invalid_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="2 sequences per family"):
        make(per_family=1)
    with pytest.raises(ValueError, match="Only 11 families"):
        make(families_per_batch=12)
    with pytest.raises(ValueError, match="rank 2"):
        make(rank=2, world_size=2)
