"""Retrieval metrics of one query's ranked hits, and their macro average over families.

Labels follow the protocol: a hit in the query's family is a true positive (``1``), a hit in the
query's clan but another family is ignored (removed from the ranking before any metric), anything
else is a false positive (``0``). The query itself is never counted as a hit. ``n_pos`` is the
number of other members of the query's family in the database, so positives a tool never reports
count as misses.

Per query:

* **AP**: mean over all ``n_pos`` positives of the precision at the rank where each is found
  (positives not found contribute 0).
* **recall@R**: true positives among the first ``R`` hits / ``R``, with ``R = min(n_pos, 100)``.
* **sensitivity to the first FP**: true positives ranked before the first false positive / n_pos.
* **P@10**: true positives among the first 10 hits / ``min(10, n_pos)`` (so a family of 4 can
  reach 1.0).
* **precision / recall / F1 at a score threshold**: over the hits scoring at least the
  threshold; precision of an empty answer is 0.

Families are macro-averaged: queries are averaged within their family, then families are
averaged (and likewise within each family-size bucket).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: Family-size buckets (members in the database): label → [low, high).
SIZE_BUCKETS: dict[str, tuple[int, float]] = {
    "<20": (0, 20),
    "20-99": (20, 100),
    ">=100": (100, float("inf")),
}
METRICS = ("ap", "precision", "recall", "f1", "recall_at_r", "sens_first_fp", "p_at_10")


@dataclass
class QueryResult:
    """One query's ranked hits, already labelled and stripped of ignored hits and itself.

    Attributes:
        query_id: the query's id.
        family: the query's family.
        relevant: 1 for a true positive, 0 for a false positive, in rank order.
        scores: the ranking score of each hit (higher is better), same order.
        n_pos: members of the query's family in the database, other than the query.
    """

    query_id: str
    family: str
    relevant: np.ndarray
    scores: np.ndarray
    n_pos: int


def label_hits(
    query_id: str,
    query_family: str,
    query_clan: str,
    hits: Sequence[tuple[str, str, str, float]],
    n_pos: int,
) -> QueryResult:
    """Label ranked hits ``(target_id, family, clan, score)`` by the protocol.

    The hits must be in rank order (best first). The query's own id is dropped, as are hits of
    the same clan but another family.
    """
    relevant: list[int] = []
    scores: list[float] = []
    for target_id, family, clan, score in hits:
        if target_id == query_id:
            continue
        if family == query_family:
            relevant.append(1)
        elif query_clan and clan == query_clan:
            continue
        else:
            relevant.append(0)
        scores.append(score)
    return QueryResult(
        query_id, query_family, np.asarray(relevant, dtype=np.int8),
        np.asarray(scores, dtype=np.float64), n_pos,
    )


def average_precision(relevant: np.ndarray, n_pos: int) -> float:
    """AP of a ranked 0/1 list over ``n_pos`` positives (unfound positives count 0)."""
    if n_pos <= 0:
        return float("nan")
    relevant = np.asarray(relevant, dtype=np.float64)
    if relevant.size == 0:
        return 0.0
    hits = np.cumsum(relevant)
    ranks = np.arange(1, relevant.size + 1)
    return float(np.sum(relevant * hits / ranks) / n_pos)


def recall_at_r(relevant: np.ndarray, n_pos: int, cap: int = 100) -> float:
    """True positives in the first ``R = min(n_pos, cap)`` hits, divided by ``R``."""
    r = min(n_pos, cap)
    if r <= 0:
        return float("nan")
    return float(np.sum(relevant[:r]) / r)


def sensitivity_to_first_fp(relevant: np.ndarray, n_pos: int) -> float:
    """Fraction of the positives ranked above the first false positive."""
    if n_pos <= 0:
        return float("nan")
    misses = np.flatnonzero(np.asarray(relevant) == 0)
    before = relevant if misses.size == 0 else relevant[: misses[0]]
    return float(np.sum(before) / n_pos)


def precision_at_k(relevant: np.ndarray, n_pos: int, k: int = 10) -> float:
    """True positives in the first ``k`` hits over ``min(k, n_pos)``."""
    denominator = min(k, n_pos)
    if denominator <= 0:
        return float("nan")
    return float(np.sum(relevant[:k]) / denominator)


def threshold_prf(
    relevant: np.ndarray, scores: np.ndarray, n_pos: int, threshold: float
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the hits scoring at least ``threshold``."""
    kept = np.asarray(scores) >= threshold
    tp = float(np.sum(relevant[kept]))
    n_kept = int(np.sum(kept))
    precision = tp / n_kept if n_kept else 0.0
    recall = tp / n_pos if n_pos > 0 else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def query_metrics(result: QueryResult, threshold: float | None) -> dict[str, float]:
    """Every per-query metric; the threshold ones are NaN when ``threshold`` is None."""
    rel, n = result.relevant, result.n_pos
    values = {
        "ap": average_precision(rel, n),
        "recall_at_r": recall_at_r(rel, n),
        "sens_first_fp": sensitivity_to_first_fp(rel, n),
        "p_at_10": precision_at_k(rel, n),
    }
    if threshold is None:
        values.update(precision=float("nan"), recall=float("nan"), f1=float("nan"))
    else:
        values["precision"], values["recall"], values["f1"] = threshold_prf(
            rel, result.scores, n, threshold
        )
    return values


def _bucket(size: int) -> str:
    for label, (low, high) in SIZE_BUCKETS.items():
        if low <= size < high:
            return label
    raise ValueError(f"Invalid family size: {size}")


def macro_average(
    results: Iterable[QueryResult],
    family_sizes: dict[str, int],
    *,
    threshold: float | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics averaged per family, then over families: overall and per size bucket.

    Returns:
        ``{"all": {...}, "<20": {...}, "20-99": {...}, ">=100": {...}}``, each holding the
        metrics of :data:`METRICS` plus ``families`` and ``queries`` counts.
    """
    per_family: dict[str, list[dict[str, float]]] = defaultdict(list)
    for result in results:
        per_family[result.family].append(query_metrics(result, threshold))
    family_means: dict[str, dict[str, float]] = {}
    for family, rows in per_family.items():
        family_means[family] = {m: float(np.nanmean([r[m] for r in rows])) if any(
            not np.isnan(r[m]) for r in rows) else float("nan") for m in METRICS}
        family_means[family]["queries"] = len(rows)
    groups: dict[str, list[str]] = {"all": sorted(family_means)}
    for label in SIZE_BUCKETS:
        groups[label] = [f for f in groups["all"] if _bucket(family_sizes[f]) == label]
    summary: dict[str, dict[str, float]] = {}
    for label, families in groups.items():
        row: dict[str, float] = {}
        for metric in METRICS:
            values = [family_means[f][metric] for f in families]
            values = [v for v in values if not np.isnan(v)]
            row[metric] = float(np.mean(values)) if values else float("nan")
        row["families"] = len(families)
        row["queries"] = int(sum(family_means[f]["queries"] for f in families))
        summary[label] = row
    return summary


def choose_threshold(results: Sequence[QueryResult], *, candidates: int = 200) -> float:
    """The score threshold that maximises the family-macro F1 of ``results`` (validation).

    Candidates are quantiles of all hit scores. Returns ``-inf`` (keep every hit) if there is
    no hit at all.
    """
    scores = np.concatenate([r.scores for r in results]) if results else np.zeros(0)
    if scores.size == 0:
        return float("-inf")
    grid = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, candidates)))
    by_family: dict[str, list[QueryResult]] = defaultdict(list)
    for result in results:
        by_family[result.family].append(result)
    best, best_f1 = float(grid[0]), -1.0
    for threshold in grid:
        f1 = np.mean([
            np.mean([threshold_prf(r.relevant, r.scores, r.n_pos, threshold)[2] for r in rows])
            for rows in by_family.values()
        ])
        if f1 > best_f1:
            best, best_f1 = float(threshold), float(f1)
    return best


def leave_one_out_metrics(
    embeddings: np.ndarray, families: Sequence[str], clans: Sequence[str]
) -> dict[str, float]:
    """Every sequence queries all others by cosine: mean AP and top-1 accuracy over queries.

    The labels are the protocol's (same family positive, same clan other family ignored); the
    whole set is ranked, so every positive is found. Used by the trainer on validation
    features, where a query-level (not family-macro) mean is enough to pick an epoch.

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
        n_pos = int(relevant.sum())
        aps.append(average_precision(relevant, n_pos))
        top1.append(precision_at_k(relevant, n_pos, k=1))
    if not aps:
        return {"map": float("nan"), "top1": float("nan"), "queries": 0.0}
    return {"map": float(np.mean(aps)), "top1": float(np.mean(top1)), "queries": float(len(aps))}
