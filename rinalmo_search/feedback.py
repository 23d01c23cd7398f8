"""Pseudo-relevance feedback: widen a re-ranked shortlist by vector queries from confident hits.

A fixed shortlist caps what stage 2 can find: family members the query's own vector does not
bring into its top candidates are never aligned. After the first re-ranked shortlist, the hits
that stage 2 already calls homologous (merged probability ``>= threshold``) are embedded with
the same model and searched again:

* the query's vector plus the mean vector of those hits (renormalised), ``depth`` candidates;
* each of the ``seeds`` most confident hits (other than a copy of the query), ``seed_depth``.

Candidates new to the shortlist are aligned with the query like the first ones, and the whole
de-duplicated set is merged again as one list (:func:`rinalmo_search.rerank.merge_scores`: the
cosine is standardised over the widened list). A new candidate's cosine to the *query* is not
known (the store returns its cosine to the feedback vector); it gets the lowest cosine of the
query's first shortlist, which is an upper bound for an exact stage 1 (anything closer would
already be in it) and costs nothing.

Measured on validation families of the shipped split (402 queries, 3 per family, exact cosine,
compact-kmer + sw; ``rinalmo-search evaluate --queries-from validation --feedback ...``): AP
0.870 → 0.923 with :data:`DEFAULT_FEEDBACK` (0.9:500:10:200:20), sensitivity to the first FP
0.847 → 0.886, P@10 0.946 → 0.964, true members returned 0.887 → 0.951 (families of ≥ 100
members 0.591 → 0.768). 0.9:1000:5:200 gave 0.922, the mean vector alone (0.9:1000:0:0) 0.915,
the seeds alone (0.9:0:5:200) 0.915; a threshold of 0.8 changed nothing; embedding 20 instead of
100 confident hits cost 0.001. Cost in that run (a loaded 2-core machine, so rough): stage 2
(alignment and feedback embedding) 1.9–2.7× the plain one, the whole search per query 3–5×, most
of it the 11 extra vector searches per query.

Reported on the test families (all 2,265 queries of 132 families, same run, ``rinalmo-search
evaluate --split split --peers none --feedback off,on --max-validation-queries-per-family 3``):
AP 0.868 → 0.911, sensitivity to the first FP 0.845 → 0.876, P@10 0.937 → 0.955, precision /
recall / F1 at the validation threshold 0.897 / 0.847 / 0.838 → 0.950 / 0.852 / 0.872; true
members returned 0.888 → 0.941 (< 20 members 0.933 → 0.962, 20–99 0.737 → 0.877, ≥ 100
0.463 → 0.661); AP by size 0.914 → 0.940, 0.714 → 0.825, 0.408 → 0.545. Time per query 0.045 →
0.179 s (4.0×): stage 2 3.0×, the vector searches (exact numpy here) 5.1× (load average 12–16 on
2 cores, so rough).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .hits import Hit
from .rerank import (
    DEFAULT_CALIBRATION,
    RerankCalibration,
    alignment_significance,
    merge_scores,
    sw_scores,
)
from .seqio import SequenceRecord

Fetch = Callable[[np.ndarray, int], list[list[Hit]]]
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Feedback:
    """How the shortlist is widened.

    Attributes:
        threshold: merged probability a hit needs to feed back.
        depth: candidates of the query-plus-mean-of-confident-hits vector.
        seeds: most confident hits searched with their own vectors.
        seed_depth: candidates of each seed.
        max_confident: at most this many confident hits (best first) are embedded for the mean.
    """

    threshold: float = 0.9
    depth: int = 500
    seeds: int = 10
    seed_depth: int = 200
    max_confident: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"Invalid feedback threshold: {self.threshold} (expected 0..1)")
        for name in ("depth", "seeds", "seed_depth", "max_confident"):
            if getattr(self, name) < 0:
                raise ConfigError(f"Invalid feedback {name}: {getattr(self, name)} (expected >= 0)")

    @classmethod
    def parse(cls, text: str) -> Feedback | None:
        """``"off"`` → ``None``; ``"on"`` → the defaults; ``"T:DEPTH:SEEDS:SEED_DEPTH[:MAX]"``
        (``MAX``: :attr:`max_confident`).

        Raises:
            ConfigError: anything else.
        """
        text = text.strip()
        if text == "off":
            return None
        if text == "on":
            return cls()
        parts = text.split(":")
        try:
            if len(parts) not in (4, 5):
                raise ValueError
            return cls(float(parts[0]), *(int(part) for part in parts[1:]))
        except ValueError:
            raise ConfigError(
                f"Invalid feedback {text!r} (expected off, on or "
                "THRESHOLD:DEPTH:SEEDS:SEED_DEPTH[:MAX_CONFIDENT], e.g. 0.9:1000:5:200)"
            ) from None

    def label(self) -> str:
        """Short form for reports (what :meth:`parse` reads)."""
        return (f"{self.threshold:g}:{self.depth}:{self.seeds}:{self.seed_depth}:"
                f"{self.max_confident}")


#: What ``rinalmo-search search`` and ``evaluate`` use unless told otherwise (``--feedback``).
DEFAULT_FEEDBACK: Feedback | None = Feedback()


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def _merge_new(
    query: SequenceRecord, hits: list[Hit], new: list[Hit], calibration: RerankCalibration
) -> list[Hit]:
    """``hits`` (already re-ranked) and ``new`` (not yet aligned), merged as one list."""
    floor = min(h.embedding_score for h in hits if h.embedding_score is not None)
    raw = sw_scores(query.sequence, [h.sequence for h in new])
    for hit, aln in zip(new, alignment_significance(raw, len(query.sequence), calibration),
                        strict=True):
        hit.alignment_score = float(aln)
        hit.embedding_score = floor
    union = hits + new
    merged = merge_scores(np.array([h.alignment_score for h in union]),
                          np.array([h.embedding_score for h in union]), calibration)
    for hit, score in zip(union, merged, strict=True):
        hit.score = float(score)
    return sorted(union, key=lambda h: -h.score)


def widen(
    queries: Sequence[SequenceRecord],
    vectors: np.ndarray,
    ranked: list[list[Hit]],
    fetch: Fetch,
    embed: Embed,
    *,
    feedback: Feedback,
    threads: int = 1,
    calibration: RerankCalibration = DEFAULT_CALIBRATION,
) -> list[list[Hit]]:
    """Each query's re-ranked shortlist widened by feedback searches and merged again.

    Arguments:
        queries: the query records.
        vectors: their embeddings (unit rows), one per query.
        ranked: each query's stage-2 hits, best first (``alignment_score`` and
            ``embedding_score`` set).
        fetch: the stage-1 search, ``fetch(vectors, k)``.
        embed: the model that made ``vectors``: ``embed(sequences)`` → unit rows.
        feedback: the parameters.
        threads: queries aligned in parallel.
        calibration: the model's stage-2 constants.

    Returns:
        For each query, the widened list, best first (a query without a confident hit keeps
        its list).
    """
    confident = [
        [h for h in hits if h.score >= feedback.threshold][: feedback.max_confident]
        for hits in ranked
    ]
    flat = [h.sequence for hits in confident for h in hits]
    if not flat or (feedback.depth == 0 and feedback.seeds == 0):
        return ranked
    hit_vectors = np.asarray(embed(flat), dtype=np.float32)
    extra: list[list[Hit]] = [[] for _ in queries]
    mean_rows, mean_of, seed_rows, seed_of = [], [], [], []
    offset = 0
    for i, hits in enumerate(confident):
        own = hit_vectors[offset : offset + len(hits)]
        offset += len(hits)
        if not hits:
            continue
        if feedback.depth:
            mean_rows.append(vectors[i] + own.mean(axis=0))
            mean_of.append(i)
        distinct = [j for j, h in enumerate(hits) if h.sequence != queries[i].sequence]
        for j in distinct[: feedback.seeds]:
            seed_rows.append(own[j])
            seed_of.append(i)
    for rows, owners, depth in ((mean_rows, mean_of, feedback.depth),
                                (seed_rows, seed_of, feedback.seed_depth)):
        if rows and depth:
            for i, found in zip(owners, fetch(_unit(np.stack(rows)), depth), strict=True):
                extra[i].extend(found)

    def one(i: int) -> list[Hit]:
        seen = {h.target_id for h in ranked[i]}
        new = []
        for hit in extra[i]:
            if hit.target_id not in seen:
                seen.add(hit.target_id)
                new.append(hit)
        return _merge_new(queries[i], ranked[i], new, calibration) if new else ranked[i]

    if threads == 1 or len(queries) == 1:
        return [one(i) for i in range(len(queries))]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(len(queries))))
