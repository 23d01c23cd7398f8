"""The retrieval protocol: our search and the peers on the same queries and database, scored.

* Queries: every sequence of a test family with at least 4 members (optionally a deterministic
  sample of at most N per family, for quick runs; reports say so).
* Database: every sequence of every family (train + validation + test).
* Our search is evaluated as the product runs it: stage 1 takes the ``top_k`` nearest database
  vectors by cosine (computed **exactly** here with numpy over the whole database, not through
  Milvus's approximate HNSW index, so the numbers measure the model, not the index), stage 2
  re-ranks them (:mod:`rinalmo_search.rerank`). The score threshold for precision/recall/F1 is
  the one that maximises macro F1 on validation-family queries.
* Peers are run as a user runs them for a ranked list: a permissive E-value (10), both strands,
  at most ``top_k`` targets per query (like our shortlist), ranked by bit score for the ranking
  metrics; their precision/recall/F1 are those of their hits at E ≤ 1e-3 (``evalue``).

Costs are wall-clock seconds on this machine with the given threads; our database embedding
(indexing) is reported apart from per-query work, as is BLASTn's ``makeblastdb``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from rinalmo_search.embedder.base import Embedder
from rinalmo_search.feedback import DEFAULT_FEEDBACK, Feedback
from rinalmo_search.hits import Hit
from rinalmo_search.rerank import RerankCalibration, two_stage
from rinalmo_search.seqio import SequenceRecord

from .metrics import QueryResult, choose_threshold, label_hits, macro_average
from .peers import SEARCH_EVALUE, SINGLE_CM, run_peer
from .split import RetrievalSet

log = logging.getLogger(__name__)


@dataclass
class ToolRun:
    """Ranked hits of every query from one tool, with what the run cost.

    Attributes:
        name: label in reports (``model+rerank`` for ours, the tool name for peers).
        hits: query id → ``[(target_id, score)]`` best first.
        seconds: stage → wall seconds (``index`` is database preparation, the rest per run).
        n_queries: queries searched.
        threads: threads used.
        threshold: score threshold for precision/recall/F1 (``None``: every reported hit).
        details: free-form facts for the report (version, top_k, …).
        evalues: for tools that report E-values (the peers): query id → target id → E-value.
        max_evalue: with ``evalues``, precision/recall/F1 are those of the hits at
            E ≤ ``max_evalue`` (instead of ``threshold`` on the ranking score).
    """

    name: str
    hits: dict[str, list[tuple[str, float]]]
    seconds: dict[str, float]
    n_queries: int
    threads: int
    threshold: float | None = None
    details: dict[str, object] = field(default_factory=dict)
    evalues: dict[str, dict[str, float]] | None = None
    max_evalue: float | None = None

    @property
    def seconds_per_query(self) -> float:
        """Wall seconds of the search stages (not the index) per query."""
        total = sum(v for k, v in self.seconds.items() if k != "index")
        return total / max(self.n_queries, 1)


def embed_in_batches(
    embedder: Embedder, records: Sequence[SequenceRecord], *, batch_size: int = 512,
    desc: str = "embedding",
) -> np.ndarray:
    """Embed records in batches with a progress bar; returns ``(n, dim)`` float32."""
    chunks = []
    for start in tqdm(range(0, len(records), batch_size), desc=desc, unit="batch",
                      disable=len(records) <= batch_size, leave=False):
        batch = records[start : start + batch_size]
        chunks.append(embedder.embed([r.sequence for r in batch]))
    if not chunks:
        return np.zeros((0, embedder.info.dim), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def exact_search(
    query_vectors: np.ndarray,
    database_vectors: np.ndarray,
    database: Sequence[SequenceRecord],
    *,
    top_k: int,
    chunk: int = 256,
) -> list[list[Hit]]:
    """Top-``top_k`` database records by cosine for each query (exact, numpy)."""
    results: list[list[Hit]] = []
    k = min(top_k, len(database))
    for start in range(0, len(query_vectors), chunk):
        sims = query_vectors[start : start + chunk] @ database_vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for row, candidates in zip(sims, top, strict=True):
            order = candidates[np.argsort(-row[candidates], kind="stable")]
            results.append([
                Hit(target_id=database[i].id, score=float(row[i]), family=database[i].family,
                    clan=database[i].clan, length=len(database[i].sequence),
                    sequence=database[i].sequence, embedding_score=float(row[i]))
                for i in order
            ])
    return results


def run_model(
    name: str,
    embedder: Embedder,
    queries: Sequence[SequenceRecord],
    database: Sequence[SequenceRecord],
    *,
    top_k: int = 1000,
    rerank_method: str = "sw",
    threads: int = 1,
    database_vectors: np.ndarray | None = None,
    first_candidates: int | None = None,
    feedback: Feedback | None = None,
) -> ToolRun:
    """Our two-stage search of ``queries`` against ``database``, as ``search`` runs it
    (:func:`rinalmo_search.rerank.two_stage`), with exact cosine search as stage 1.

    Arguments:
        name: label for reports.
        embedder: the model.
        queries: query records.
        database: database records.
        top_k: stage-1 shortlist size.
        rerank_method: stage-2 method (see :mod:`rinalmo_search.rerank`).
        threads: stage-2 threads.
        database_vectors: the database's vectors if already computed (then ``index`` is 0).
        first_candidates: the adaptive shortlist's first depth (``None``: always ``top_k``).
        feedback: widen each shortlist with feedback searches (:mod:`rinalmo_search.feedback`);
            the widened list is cut to the same ``top_k`` (+1, the query) as without.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    if database_vectors is None:
        database_vectors = embed_in_batches(embedder, database, desc="embedding database")
    seconds["index"] = time.perf_counter() - start
    start = time.perf_counter()
    query_vectors = embed_in_batches(embedder, queries, desc="embedding queries")
    seconds["embed"] = time.perf_counter() - start
    seconds["search"] = 0.0
    depths: list[int] = []

    def fetch(vectors: np.ndarray, k: int) -> list[list[Hit]]:
        started = time.perf_counter()
        found = exact_search(vectors, database_vectors, database, top_k=k)
        seconds["search"] += time.perf_counter() - started
        depths.extend([k] * len(vectors))
        return found

    deepest = top_k + 1  # the query itself is in the database
    start = time.perf_counter()
    ranked = two_stage(queries, query_vectors, fetch, top_k=deepest, candidates=deepest,
                       first_candidates=first_candidates or deepest, method=rerank_method,
                       threads=threads, calibration=RerankCalibration.for_model(embedder),
                       feedback=feedback, embed=embedder.embed)
    seconds["rerank"] = time.perf_counter() - start - seconds["search"]
    first = min(first_candidates or deepest, deepest)
    extended = sum(depth == deepest for depth in depths) if first < deepest else 0
    hits = {
        q.id: [(h.target_id, h.score) for h in hs]
        for q, hs in zip(queries, ranked, strict=True)
    }
    label = name if rerank_method == "none" else f"{name}+{rerank_method}"
    if feedback is not None and rerank_method != "none":
        label += "+prf" if feedback == DEFAULT_FEEDBACK else f"+prf({feedback.label()})"
    return ToolRun(label, hits, seconds, len(queries), threads,
                   details={"model": embedder.info.tag, "top_k": top_k,
                            "rerank": rerank_method, "vector_search": "exact numpy cosine",
                            "first_candidates": first, "queries_extended": extended,
                            "feedback": feedback.label() if feedback else "off"})


def peer_run(
    name: str,
    queries: Sequence[SequenceRecord],
    database: Sequence[SequenceRecord],
    *,
    threads: int = 1,
    evalue: float = 1e-3,
    max_hits: int = 1000,
    calibrate_mb: float = 0.01,
    search_evalue: float = SEARCH_EVALUE,
) -> ToolRun:
    """Run one peer tool (:mod:`.peers`) and wrap it as a :class:`ToolRun`.

    Arguments:
        name: the peer.
        queries: query records.
        database: database records.
        threads: the tool's threads.
        evalue: the at-threshold cut-off (precision/recall/F1 of the hits at E ≤ ``evalue``).
        max_hits: at most this many targets per query.
        calibrate_mb: ``cmcalibrate -L`` of :data:`~.peers.SINGLE_CM`.
        search_evalue: what the tool is asked to report (permissive: a ranked list).
    """
    run = run_peer(name, queries, database, threads=threads, evalue=max(search_evalue, evalue),
                   max_hits=max_hits, calibrate_mb=calibrate_mb)
    details: dict[str, object] = {"version": run.version, "evalue": evalue,
                                  "search_evalue": max(search_evalue, evalue),
                                  "max_hits": max_hits, "ranking": "bit score",
                                  "strands": "both"}
    if name == SINGLE_CM:
        details.update(calibration=f"cmcalibrate -L {calibrate_mb}",
                       structure="RNAfold MFE of the query")
    return ToolRun(name, run.hits, dict(run.stages), len(queries), threads, None,
                   details=details, evalues=run.evalues, max_evalue=evalue)


def _significance(evalue: float) -> float:
    """``-log10(E)`` (higher is better; 300 for an E-value of 0)."""
    return 300.0 if evalue <= 0 else -math.log10(evalue)


def label_run(
    run: ToolRun, queries: Sequence[SequenceRecord], split: RetrievalSet
) -> list[QueryResult]:
    """Label every query's hits of ``run`` by the protocol.

    The hits keep ``run``'s order; each one's score (what thresholds apply to) is its ranking
    score, or ``-log10(E)`` for a run with :attr:`ToolRun.evalues`.
    """
    sizes = split.family_sizes()
    by_id = {r.id: r for r in split.records}
    results = []
    for query in queries:
        ranked = run.hits.get(query.id, [])
        evalues = None if run.evalues is None else run.evalues.get(query.id, {})
        rows = []
        for target_id, score in ranked:
            target = by_id[target_id]
            if evalues is not None:
                score = _significance(evalues[target_id])
            rows.append((target_id, target.family, target.clan, score))
        in_db = 1 if query.id in by_id else 0
        results.append(label_hits(query.id, query.family, query.clan, rows,
                                  sizes[query.family] - in_db))
    return results


def score_run(
    run: ToolRun, queries: Sequence[SequenceRecord], split: RetrievalSet
) -> dict[str, dict[str, float]]:
    """Macro-averaged metrics of ``run`` (overall and by family-size bucket)."""
    results = label_run(run, queries, split)
    if run.evalues is not None and run.max_evalue is not None:
        threshold = _significance(run.max_evalue)
    else:
        threshold = float("-inf") if run.threshold is None else run.threshold
    return macro_average(results, dict(split.family_sizes()), threshold=threshold)


def calibrate_threshold(
    run: ToolRun, validation_queries: Sequence[SequenceRecord], split: RetrievalSet
) -> float:
    """Threshold maximising macro F1 of ``run``'s hits of validation queries."""
    return choose_threshold(label_run(run, validation_queries, split))
