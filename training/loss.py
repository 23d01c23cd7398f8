"""Supervised contrastive loss (Khosla et al. 2020, the "L_out" form), on unit embeddings."""

from __future__ import annotations

import torch
from torch import Tensor


def supervised_contrastive_loss(
    embeddings: Tensor, labels: Tensor, *, temperature: float = 0.1
) -> Tensor:
    """Mean over anchors with at least one positive of
    ``-1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t) )``.

    Arguments:
        embeddings: ``(n, d)`` rows of unit length (normalised here again, for safety).
        labels: ``(n,)`` integer class labels (families); equal labels are positives.
        temperature: τ.

    Returns:
        A scalar; zero (with a gradient path) when no anchor has a positive.

    Raises:
        ValueError: mismatched shapes or a non-positive temperature.
    """
    if embeddings.ndim != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(
            f"Expected embeddings (n, d) and labels (n,), found {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"Invalid 'temperature' value: {temperature} (expected > 0)")
    z = torch.nn.functional.normalize(embeddings.float(), dim=1)
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0
    summed = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -(summed[anchors] / counts[anchors]).mean()
