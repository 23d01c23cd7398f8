"""Supervised contrastive loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from rinalmo_search.training.loss import supervised_contrastive_loss


def test_three_vectors_by_hand() -> None:
    # z1=(1,0), z2=(0,1) share a label, z3=(s,s) with s=1/sqrt(2) is alone.
    # Anchor 1: P={2}; denominator over a in {2,3}: e^{0/t} + e^{s/t}; numerator e^{0/t}.
    # Anchor 2 is symmetric. Anchor 3 has no positive and is left out.
    t = 0.1
    s = 1 / math.sqrt(2)
    expected = -(0.0 - math.log(math.exp(0.0) + math.exp(s / t)))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [s, s]])
    loss = supervised_contrastive_loss(z, torch.tensor([0, 0, 1]), temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_two_positives_by_hand() -> None:
    # Four vectors at angles 0, 60, 120, 180 degrees; labels 0,0,0,1, tau 0.5.
    t = 0.5
    angles = [0.0, 60.0, 120.0, 180.0]
    z = torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles])
    cos = [[math.cos(math.radians(a - b)) for b in angles] for a in angles]
    labels = [0, 0, 0, 1]
    terms = []
    for i in range(4):
        positives = [p for p in range(4) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(cos[i][a] / t) for a in range(4) if a != i)
        terms.append(-sum(cos[i][p] / t - math.log(denominator) for p in positives)
                     / len(positives))
    expected = sum(terms) / len(terms)
    loss = supervised_contrastive_loss(z, torch.tensor(labels), temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_pulls_positives_together() -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 16, generator=generator))
    z.requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = supervised_contrastive_loss(z, labels)
    loss.backward()
    with torch.no_grad():
        moved = torch.nn.functional.normalize(z - 0.05 * z.grad)
    assert supervised_contrastive_loss(moved, labels).item() < loss.item()


def test_no_positive_gives_zero_and_bad_input_is_refused() -> None:
    z = torch.eye(3)
    assert supervised_contrastive_loss(z, torch.tensor([0, 1, 2])).item() == 0.0
    with pytest.raises(ValueError, match="temperature"):
        supervised_contrastive_loss(z, torch.tensor([0, 0, 1]), temperature=0.0)
    with pytest.raises(ValueError, match=r"found \(3, 3\) and \(2,\)"):
        supervised_contrastive_loss(z, torch.tensor([0, 0]))
