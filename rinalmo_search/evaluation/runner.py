"""One evaluation run: models (each with its re-ranking methods) and peers, scored, reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rinalmo_search.embedder import load_embedder
from rinalmo_search.embedder.base import Embedder
from rinalmo_search.errors import ConfigError
from rinalmo_search.feedback import DEFAULT_FEEDBACK, Feedback
from rinalmo_search.seqio import SequenceRecord

from .metrics import SIZE_BUCKETS
from .peers import ALL_PEERS, PEERS
from .protocol import (
    ToolRun,
    calibrate_threshold,
    embed_in_batches,
    label_run,
    peer_run,
    run_model,
    score_run,
)
from .provenance import cached_head_embedder, split_warnings
from .report import build_report
from .split import RetrievalSet

log = logging.getLogger(__name__)


def model_runs(
    name: str,
    embedder: Embedder,
    split: RetrievalSet,
    queries: Sequence[SequenceRecord],
    validation: Sequence[SequenceRecord],
    *,
    reranks: Sequence[str] = ("sw",),
    top_k: int = 1000,
    threads: int = 1,
    feedbacks: Sequence[Feedback | None] = (None,),
) -> tuple[list[ToolRun], np.ndarray]:
    """One model's runs, one per re-ranking method and feedback setting, each with its
    validation threshold.

    The database (every record of ``split``) is embedded once; its time is each run's
    ``index`` stage.

    Returns:
        The runs (in ``reranks`` order) and the database vectors.
    """
    database = split.records
    start = time.perf_counter()
    vectors = embed_in_batches(embedder, database, desc=f"embedding database ({name})")
    index_seconds = time.perf_counter() - start
    log.info("%s: database of %d embedded in %.1f s (%.0f seq/s)", name, len(database),
             index_seconds, len(database) / max(index_seconds, 1e-9))
    runs = []
    settings = list(dict.fromkeys(  # feedback needs stage 2: 'none' runs once, without
        (m, f if m != "none" else None) for m in reranks for f in feedbacks))
    for method, feedback in settings:
        run = run_model(name, embedder, queries, database, top_k=top_k,
                        rerank_method=method, threads=threads, database_vectors=vectors,
                        feedback=feedback)
        run.seconds["index"] = index_seconds
        if validation:
            check = run_model(name, embedder, validation, database, top_k=top_k,
                              rerank_method=method, threads=threads, database_vectors=vectors,
                              feedback=feedback)
            run.threshold = calibrate_threshold(check, validation, split)
        run.details["shortlist_recall"] = shortlist_recall(run, queries, split)
        run.details["database_seq_per_s"] = round(len(database) / max(index_seconds, 1e-9))
        runs.append(run)
        log.info("%s: %d queries, %.4f s/query", run.name, len(queries), run.seconds_per_query)
    return runs, vectors


def shortlist_recall(
    run: ToolRun, queries: Sequence[SequenceRecord], split: RetrievalSet
) -> dict[str, float]:
    """True members a run returns / (family size − 1), averaged per family then over families
    (overall and by family-size bucket, as the other metrics)."""
    sizes = split.family_sizes()
    per_family: dict[str, list[float]] = {}
    for result in label_run(run, queries, split):
        if result.n_pos > 0:
            per_family.setdefault(result.family, []).append(
                float(result.relevant.sum()) / result.n_pos)
    family_mean = {f: float(np.mean(v)) for f, v in per_family.items()}
    out = {"all": float(np.mean(list(family_mean.values()))) if family_mean else 0.0}
    for label, (low, high) in SIZE_BUCKETS.items():
        values = [v for f, v in family_mean.items() if low <= sizes[f] < high]
        out[label] = float(np.mean(values)) if values else float("nan")
    return {k: round(v, 4) for k, v in out.items()}


def logged_split_warnings(models: Sequence[str], split: RetrievalSet) -> list[str]:
    """:func:`.provenance.split_warnings` of every model, each also logged as a warning."""
    warnings = [warning for name in models for warning in split_warnings(name, split)]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def evaluate(
    split: RetrievalSet,
    *,
    models: Sequence[str],
    reranks: Sequence[str] = ("sw",),
    peers: Sequence[str] = PEERS,
    top_k: int = 1000,
    evalue: float = 1e-3,
    threads: int = 1,
    max_queries_per_family: int | None = None,
    max_validation_queries_per_family: int | None = 10,
    feature_cache: str | Path | None = None,
    feedbacks: Sequence[Feedback | None] = (DEFAULT_FEEDBACK,),
    query_split: str = "test",
) -> dict[str, object]:
    """Run the protocol (see :mod:`.protocol`) and return the report document.

    Arguments:
        split: the split (database = all its sequences).
        models: model names or paths.
        reranks: stage-2 methods to evaluate for each model.
        peers: peer tools to run on the same queries and database.
        top_k: stage-1 shortlist size (and peers' maximum targets per query).
        evalue: peers' E-value threshold.
        threads: threads for peers and stage 2.
        max_queries_per_family: sample at most this many test queries per family (None: all).
        max_validation_queries_per_family: the same for the validation queries that fix our
            score thresholds.
        feature_cache: the trainer's feature cache root: heads trained on a frozen RiNALMo
            backbone embed through it (see :func:`.provenance.cached_head_embedder`).
        feedbacks: feedback settings evaluated for each re-ranking method (``None``: off).
        query_split: the families queried, ``"test"``; ``"validation"`` to choose parameters
            (thresholds are then fixed on the same queries: use it to compare, never to report).

    Raises:
        ConfigError: no test query (no test family with at least 4 members), unknown peer.
    """
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        raise ConfigError(f"Unknown peer {unknown[0]!r} (expected some of {', '.join(ALL_PEERS)})")
    queries = split.queries(query_split, max_per_family=max_queries_per_family)
    if not queries:
        raise ConfigError(
            f"{split.source}: no {query_split} query (expected a {query_split} family with at "
            "least 4 members)"
        )
    validation = split.queries("validation", max_per_family=max_validation_queries_per_family)
    database = split.records
    runs: list[ToolRun] = []
    warnings = logged_split_warnings(models, split)
    for name in models:
        embedder = (cached_head_embedder(name, feature_cache, split) if feature_cache else None)
        embedder = embedder or load_embedder(name)
        runs += model_runs(name, embedder, split, queries, validation, reranks=reranks,
                           top_k=top_k, threads=threads, feedbacks=feedbacks)[0]
    for name in peers:
        runs.append(peer_run(name, queries, database, threads=threads, evalue=evalue,
                             max_hits=top_k))
    summaries = [score_run(run, queries, split) for run in runs]
    sampled = "" if max_queries_per_family is None else (
        f"At most {max_queries_per_family} queries per family (deterministic sample). ")
    meta = {
        "split": split.source,
        "queries": len(queries),
        "query_split": query_split,
        "families": len({q.family for q in queries}),
        "validation_queries": len(validation),
        "database": len(database),
        "top_k": top_k,
        "evalue": evalue,
        "warnings": warnings,
        "note": (f"{sampled}Ours: exact cosine top-{top_k} (numpy, not HNSW), then re-ranking; "
                 f"threshold from validation families. Peers: up to {top_k} hits at E ≤ 10, "
                 f"both strands, ranked by bit score; P/R/F1 of those at E ≤ {evalue}."),
    }
    return build_report(runs, summaries, meta=meta)
