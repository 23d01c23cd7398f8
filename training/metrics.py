"""Retrieval metrics on embeddings: each sequence queries all others by cosine similarity.

Relevance is family-level: a hit of the query's family is a true positive, another family of
another clan a false positive, and another family of the *same* clan is neither (removed from
the ranking), as the fair-use note of the shared Rfam data asks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_metrics(
    embeddings: np.ndarray, families: Sequence[str], clans: Sequence[str]
) -> dict[str, float]:
    """Mean average precision and top-1 accuracy of leave-one-out retrieval.

    Arguments:
        embeddings: ``(n, d)`` unit rows.
        families: family of each row.
        clans: clan of each row (empty = unclanned).

    Returns:
        ``{"map": ..., "top1": ..., "queries": ...}`` over queries whose family has at least one
        other member; NaN metrics when there is no such query.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    family_ids = np.unique(np.asarray(families), return_inverse=True)[1]
    clan_array = np.asarray([c or f"_{f}" for c, f in zip(clans, families, strict=True)])
    clan_ids = np.unique(clan_array, return_inverse=True)[1]
    scores = vectors @ vectors.T
    aps: list[float] = []
    top1: list[float] = []
    for query in range(len(vectors)):
        same_family = family_ids == family_ids[query]
        same_family[query] = False
        if not same_family.any():
            continue
        keep = ~((clan_ids == clan_ids[query]) & ~same_family)
        keep[query] = False
        order = np.argsort(-scores[query][keep], kind="stable")
        relevant = same_family[keep][order]
        hits = np.cumsum(relevant)
        ranks = np.flatnonzero(relevant) + 1
        aps.append(float(np.mean(hits[relevant] / ranks)))
        top1.append(float(relevant[0]))
    if not aps:
        return {"map": float("nan"), "top1": float("nan"), "queries": 0.0}
    return {"map": float(np.mean(aps)), "top1": float(np.mean(top1)), "queries": float(len(aps))}
