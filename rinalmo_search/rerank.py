"""Stage 2 of a search: re-score the embedding shortlist with an alignment, merge both scores.

Stage 1 (vector search) returns, for each query, a shortlist of candidates ranked by cosine
similarity. Stage 2 aligns the query with each candidate only (never the whole database) and
ranks them by one merged score.

Methods (:data:`RERANK_METHODS`):

* ``"none"``: keep the embedding ranking; ``score`` stays the cosine.
* ``"sw"`` (default): local Smith–Waterman alignment of the query with every candidate
  (Opal's inter-sequence SIMD kernel through ``pyopal``; match +1, mismatch −1, a gap costs 3
  for its first position and 1 for each further one — on validation families this ranked better than
  BLASTn's +2/−3/5/2: AP 0.849 vs 0.839), turned into an E-value with Karlin–Altschul
  constants fitted to the Gumbel distribution of scores of unrelated training-family pairs
  (λ = 0.955, ln K = −2.72) for a reference database of :data:`REFERENCE_DB_RESIDUES`
  nucleotides, so scores are comparable across queries and databases. ``alignment_score`` is
  ``-log10(E)``. The hits a search writes also get ``evalue`` for the collection actually
  searched and the alignment's coordinates (:func:`describe_alignments`, a full alignment of
  those hits only).

The merged ``score`` is a calibrated probability that the candidate is in the query's family,
``sigmoid(a * alignment_score + b * z + c)`` where ``z`` is the candidate's cosine similarity
standardised over the query's shortlist (so it does not depend on a model's cosine scale), with
``(a, b, c)`` fitted by logistic regression on the shortlists of validation-family queries
(``rinalmo-search calibrate`` writes λ, ln K and ``(a, b, c)`` into the model file,
:class:`RerankCalibration`; :data:`MERGE_COEFFICIENTS` is the fallback).
A threshold on it is therefore a threshold on the estimated probability of homology. On
validation families the merged ranking is a little better than the alignment alone (AP 0.866 vs
0.863); the embedding's main job is choosing which candidates get aligned.

Cost: 1,000 Rfam candidates align in about 4 ms per query on one core (parasail's striped
kernel, one call per candidate, took 13.5 ms in the same run; the raw scores are identical).
``threads`` aligns several queries at once (Opal releases the GIL).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, InputError
from .hits import Alignment, DatabaseSize, Hit
from .seqio import SequenceRecord

if TYPE_CHECKING:
    from .feedback import Feedback

log = logging.getLogger(__name__)

RERANK_METHODS = ("sw", "none")
DEFAULT_RERANK = RERANK_METHODS[0]

#: Scores (``GAP_OPEN`` is the cost of a gap's first position, ``GAP_EXTEND`` of each further
#: one) and the Karlin–Altschul constants of that scheme, fitted on unrelated Rfam pairs.
MATCH, MISMATCH, GAP_OPEN, GAP_EXTEND = 1, -1, 3, 1
#: These are the fallback for a model file that records no calibration of its own
#: (:class:`RerankCalibration`; ``rinalmo-search calibrate`` writes one).
LAMBDA, LOG_K = 0.955, -2.72
K = math.exp(LOG_K)
#: Database size (nt) the E-values are computed for: about the Rfam seed set.
REFERENCE_DB_RESIDUES = 6.5e6
#: (a, b, c) of the merged score ``sigmoid(a * alignment + b * standardised cosine + c)``.
MERGE_COEFFICIENTS = (2.065, 0.131, 0.151)


@dataclass(frozen=True)
class RerankCalibration:
    """The fitted constants of stage 2 for one model.

    Attributes:
        lambda_: Karlin–Altschul λ of the Smith–Waterman scores (Gumbel scale 1/λ).
        log_k: ln K of the same fit.
        merge: ``(a, b, c)`` of the merged score.
    """

    lambda_: float = LAMBDA
    log_k: float = LOG_K
    merge: tuple[float, float, float] = MERGE_COEFFICIENTS

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> RerankCalibration:
        """The calibration a model file's metadata record (``"rerank"``), else the defaults."""
        section = metadata.get("rerank")
        if not isinstance(section, Mapping):
            return cls()
        a, b, c = (float(v) for v in section["merge"])
        return cls(float(section["lambda"]), float(section["log_k"]), (a, b, c))

    @classmethod
    def for_model(cls, embedder: object) -> RerankCalibration:
        """The calibration recorded in an embedder's model file (``metadata``), else defaults."""
        metadata = getattr(embedder, "metadata", None)
        return cls.from_metadata(metadata if isinstance(metadata, Mapping) else {})

    def to_metadata(self) -> dict[str, Any]:
        """The ``"rerank"`` metadata section that :meth:`from_metadata` reads."""
        return {"lambda": self.lambda_, "log_k": self.log_k, "merge": list(self.merge)}


DEFAULT_CALIBRATION = RerankCalibration()

_ALPHABET = "ACGUN"
_TRANSLATE = str.maketrans({c: "N" for c in "RYKMSWBDHVIT"} | {"T": "U"})


_ALIGNERS = threading.local()


def _aligner() -> Any:
    """This thread's Opal aligner for :data:`MATCH`/:data:`MISMATCH`/gap costs (lazy import)."""
    aligner = getattr(_ALIGNERS, "aligner", None)
    if aligner is None:
        try:
            import pyopal
            from scoring_matrices import ScoringMatrix
        except ImportError:  # pragma: no cover - a dependency of the package
            raise ConfigError(
                "Re-ranking method 'sw' needs the 'pyopal' package (pip install pyopal), "
                "or use --rerank none"
            ) from None
        scores = [[MATCH if a == b else MISMATCH for b in _ALPHABET] for a in _ALPHABET]
        # Opal charges GAP_OPEN for a gap's first position and GAP_EXTEND for each further one
        # (the scheme parasail ran before; raw scores identical, tests/test_sw_kernel.py).
        aligner = pyopal.Aligner(
            ScoringMatrix(scores, alphabet=_ALPHABET), gap_open=GAP_OPEN, gap_extend=GAP_EXTEND
        )
        _ALIGNERS.aligner = aligner
    return aligner


def _clean(sequence: str) -> str:
    return sequence.upper().translate(_TRANSLATE)


def sw_scores(query: str, targets: Sequence[str]) -> np.ndarray:
    """Raw Smith–Waterman scores of ``query`` against each target.

    Opal's inter-sequence SIMD kernel aligns the query with many targets at once (about 3×
    faster than one striped alignment per target on 1,000 Rfam candidates).
    """
    if not targets:
        return np.zeros(0, dtype=np.float64)
    import pyopal  # loaded by _aligner()

    aligner = _aligner()
    database = pyopal.Database([_clean(t) for t in targets], alphabet=aligner.alphabet)
    results = aligner.align(_clean(query), database, mode="score", algorithm="sw")
    return np.fromiter((r.score for r in results), dtype=np.float64, count=len(targets))


def alignment_significance(
    raw: np.ndarray, query_length: int, calibration: RerankCalibration = DEFAULT_CALIBRATION,
    database_residues: float = REFERENCE_DB_RESIDUES,
) -> np.ndarray:
    """``-log10(E)`` of raw scores for a query of ``query_length`` nt, ``E = K m n e^(-λS)``.

    Arguments:
        raw: Smith-Waterman scores.
        query_length: ``m``.
        calibration: the model's λ and ln K.
        database_residues: ``n``; the default, :data:`REFERENCE_DB_RESIDUES`, is what the
            merged score was fitted on (stage 2 ranks with it), a search's reported E-values
            use the size of the collection searched (:func:`describe_alignments`).
    """
    k = math.exp(calibration.log_k)
    log_e = (math.log(k * max(query_length, 1) * max(database_residues, 1.0))
             - calibration.lambda_ * np.asarray(raw, dtype=np.float64))
    return -log_e / math.log(10)


def sw_alignments(
    query: str, targets: Sequence[str], calibration: RerankCalibration = DEFAULT_CALIBRATION
) -> list[Alignment]:
    """The Smith-Waterman alignment of ``query`` with each target (coordinates, counts).

    Opal's ``full`` mode with traceback costs about 5x the score-only pass (7.5 vs 1.5 ms for
    1,000 Rfam candidates under load), so a search runs it on the hits it writes only.
    """
    if not targets:
        return []
    import pyopal  # loaded by _aligner()

    aligner = _aligner()
    database = pyopal.Database([_clean(t) for t in targets], alphabet=aligner.alphabet)
    results = aligner.align(_clean(query), database, mode="full", algorithm="sw")
    alignments = []
    for result in results:
        ops = result.alignment or ""
        gap_opens = sum(1 for i, op in enumerate(ops)
                        if op in "ID" and (i == 0 or ops[i - 1] != op))
        raw = float(result.score)
        empty = not ops  # no positive-scoring pair: Opal reports no alignment
        alignments.append(Alignment(
            raw_score=raw,
            query_start=0 if empty else result.query_start + 1,
            query_end=0 if empty else result.query_end + 1,
            target_start=0 if empty else result.target_start + 1,
            target_end=0 if empty else result.target_end + 1,
            length=len(ops), identities=ops.count("M"), mismatches=ops.count("X"),
            gap_opens=gap_opens,
            bit_score=(calibration.lambda_ * raw - calibration.log_k) / math.log(2),
        ))
    return alignments


def describe_alignments(
    query: SequenceRecord, hits: list[Hit], database: DatabaseSize,
    calibration: RerankCalibration = DEFAULT_CALIBRATION,
) -> None:
    """Set each hit's :attr:`~Hit.alignment` and :attr:`~Hit.evalue` for ``database``.

    A second, full alignment of the hits a search returns (not of the whole shortlist); the
    ranking and ``score`` are left as they are.
    """
    alignments = sw_alignments(query.sequence, [h.sequence for h in hits], calibration)
    if not alignments:
        return
    significance = alignment_significance(
        np.array([a.raw_score for a in alignments]), len(query.sequence), calibration,
        database_residues=database.residues,
    )
    for hit, alignment, value in zip(hits, alignments, significance, strict=True):
        hit.alignment = alignment
        hit.evalue = float(10.0 ** -value)


def merge_scores(
    alignment: np.ndarray, embedding: np.ndarray,
    calibration: RerankCalibration = DEFAULT_CALIBRATION,
) -> np.ndarray:
    """The calibrated merged score (probability of same family) of one query's candidates.

    Arguments:
        alignment: ``-log10(E)`` of each candidate.
        embedding: cosine similarity of each candidate (standardised here over the shortlist).
        calibration: the model's merge coefficients.
    """
    a, b, c = calibration.merge
    embedding = np.asarray(embedding, dtype=np.float64)
    z = (embedding - embedding.mean()) / (embedding.std() + 1e-6)
    logit = a * np.asarray(alignment) + b * z + c
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


def _rerank_one(
    query: SequenceRecord, hits: list[Hit], calibration: RerankCalibration
) -> list[Hit]:
    if not hits:
        return []
    targets = [h.sequence for h in hits]
    missing = [h.target_id for h in hits if not h.sequence]
    if missing:
        raise InputError(
            f"Cannot re-rank hits of query {query.id!r}: {len(missing)} hits lack their "
            f"sequence (first {missing[0]!r}); the vector store must return target sequences"
        )
    raw = sw_scores(query.sequence, targets)
    alignment = alignment_significance(raw, len(query.sequence), calibration)
    embedding = np.array(
        [h.embedding_score if h.embedding_score is not None else h.score for h in hits]
    )
    merged = merge_scores(alignment, embedding, calibration)
    for hit, aln, emb, score in zip(hits, alignment, embedding, merged, strict=True):
        hit.embedding_score = float(emb)
        hit.alignment_score = float(aln)
        hit.score = float(score)
    return sorted(hits, key=lambda h: -h.score)


def rerank(
    queries: Sequence[SequenceRecord],
    hits: Sequence[list[Hit]],
    *,
    method: str = DEFAULT_RERANK,
    threads: int = 1,
    calibration: RerankCalibration = DEFAULT_CALIBRATION,
) -> list[list[Hit]]:
    """Re-score and re-order each query's stage-1 hits.

    Arguments:
        queries: the query records.
        hits: for each query (same order), its stage-1 hits with ``sequence`` set and
            ``score``/``embedding_score`` the cosine similarity.
        method: one of :data:`RERANK_METHODS`.
        threads: queries aligned in parallel.
        calibration: the model's stage-2 constants (:meth:`RerankCalibration.for_model`).

    Returns:
        For each query, its hits with ``alignment_score``, ``embedding_score`` and the merged
        ``score`` set, best first. With ``"none"``, the hits unchanged except that
        ``embedding_score`` is filled in.

    Raises:
        ConfigError: unknown method or invalid thread count.
        InputError: ``queries`` and ``hits`` differ in length, or hits lack sequences.
    """
    if method not in RERANK_METHODS:
        raise ConfigError(
            f"Invalid re-ranking method: {method!r} (expected one of {', '.join(RERANK_METHODS)})"
        )
    if threads < 1:
        raise ConfigError(f"Invalid 'threads' value: {threads} (expected a positive integer)")
    if len(queries) != len(hits):
        raise InputError(
            f"Re-ranking needs one hit list per query: {len(queries)} queries, {len(hits)} lists"
        )
    if method == "none":
        out = []
        for query_hits in hits:
            for hit in query_hits:
                if hit.embedding_score is None:
                    hit.embedding_score = hit.score
            out.append(list(query_hits))
        return out
    if threads == 1 or len(queries) == 1:
        return [_rerank_one(q, list(h), calibration) for q, h in zip(queries, hits, strict=True)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(_rerank_one, queries, [list(h) for h in hits],
                             [calibration] * len(queries)))


#: An adaptive shortlist asks once for the full depth when a candidate in the last half of
#: its first shortlist (by embedding rank) still scores at least this merged probability after
#: re-ranking: family members still turning up at its end mean more of them lie beyond it.
#: Measured on the test families of the shipped split (exact cosine, 2,265 queries): a first
#: depth of 200 extended 1,253 queries and gave AP 0.841 / sensitivity to the first FP 0.824,
#: against 0.868 / 0.845 at a fixed 1,000; 100 gave 0.825 / 0.809. Searches therefore use the
#: fixed depth unless asked (``search --first-candidates``).
EXTEND_SCORE = 0.5


def two_stage(
    queries: Sequence[SequenceRecord],
    vectors: np.ndarray,
    fetch: Callable[[np.ndarray, int], list[list[Hit]]],
    *,
    top_k: int,
    candidates: int = 1000,
    first_candidates: int = 1000,
    method: str = DEFAULT_RERANK,
    threads: int = 1,
    calibration: RerankCalibration = DEFAULT_CALIBRATION,
    feedback: Feedback | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> list[list[Hit]]:
    """Stage 1 (vector search) and stage 2 (re-ranking) with an adaptive shortlist.

    Each query first gets ``first_candidates`` candidates; only a query whose shortlist still
    holds a probable homolog in its last half (see :data:`EXTEND_SCORE`) is searched again for
    ``candidates``; what that costs in AP is measured under :data:`EXTEND_SCORE`.

    Arguments:
        queries: the query records.
        vectors: their embeddings, one row per query.
        fetch: ``fetch(vectors, k)`` returns the ``k`` nearest stored sequences of each row,
            best first, with sequences (a vector store's search, or an exact search).
        top_k: hits kept per query (at most; a query that stops at its first shortlist keeps
            at most ``first_candidates``).
        candidates: the deepest shortlist a query may get.
        first_candidates: the first shortlist's depth (``candidates`` or more: no adaptation).
        method: stage-2 method (``"none"``: the top ``top_k`` of stage 1).
        threads: re-ranking threads.
        calibration: the model's stage-2 constants.
        feedback: widen each re-ranked shortlist with vector searches from its confident
            hits and merge again (:func:`rinalmo_search.feedback.widen`; none deeper than
            ``candidates``); ``None``: off.
        embed: the model that made ``vectors`` (``embed(sequences)``), needed by ``feedback``.

    Returns:
        For each query, its best ``top_k`` hits, best first.

    Raises:
        ConfigError: ``feedback`` without ``embed``.
    """
    if feedback is not None and embed is None and method != "none":
        raise ConfigError("Feedback searches need the embedding model (embed=...)")
    if method == "none":
        return rerank(queries, fetch(vectors, top_k), method="none")
    deepest = max(top_k, candidates)
    first = min(first_candidates, deepest)
    shortlists = fetch(vectors, first)
    ranked = rerank(queries, shortlists, method=method, threads=threads, calibration=calibration)
    extend = [
        i
        for i, shortlist in enumerate(shortlists)
        if first < deepest
        and len(shortlist) == first
        and any(hit.score >= EXTEND_SCORE for hit in shortlist[first // 2 :])
    ]
    if extend:
        log.debug("%d of %d queries extend their shortlist to %d", len(extend), len(queries),
                  deepest)
        deeper = rerank(
            [queries[i] for i in extend],
            fetch(vectors[extend], deepest),
            method=method,
            threads=threads,
            calibration=calibration,
        )
        for i, hits in zip(extend, deeper, strict=True):
            ranked[i] = hits
    if feedback is not None and embed is not None:
        from .feedback import widen

        # no feedback search goes deeper than the query's own shortlist may
        feedback = replace(feedback, depth=min(feedback.depth, deepest),
                           seed_depth=min(feedback.seed_depth, deepest))
        ranked = widen(queries, vectors, ranked, fetch, embed, feedback=feedback,
                       threads=threads, calibration=calibration)
    return [hits[:top_k] for hits in ranked]
