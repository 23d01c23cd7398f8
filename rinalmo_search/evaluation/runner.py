"""One evaluation run: models (each with its re-ranking methods) and peers, scored, reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from rinalmo_search.embedder import load_embedder
from rinalmo_search.errors import ConfigError

from .peers import PEERS
from .protocol import (
    ToolRun,
    calibrate_threshold,
    embed_in_batches,
    peer_run,
    run_model,
    score_run,
)
from .provenance import cached_head_embedder, split_warnings
from .report import build_report
from .split import Split

log = logging.getLogger(__name__)


def evaluate(
    split: Split,
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

    Raises:
        ConfigError: no test query (no test family with at least 4 members), unknown peer.
    """
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise ConfigError(f"Unknown peer {unknown[0]!r} (expected some of {', '.join(PEERS)})")
    queries = split.queries("test", max_per_family=max_queries_per_family)
    if not queries:
        raise ConfigError(
            f"{split.source}: no test query (expected a test family with at least 4 members)"
        )
    validation = split.queries("valid", max_per_family=max_validation_queries_per_family)
    database = split.records
    runs: list[ToolRun] = []
    warnings: list[str] = []
    for name in models:
        for warning in split_warnings(name, split):
            log.warning("%s", warning)
            warnings.append(warning)
        embedder = (cached_head_embedder(name, feature_cache, split) if feature_cache else None)
        embedder = embedder or load_embedder(name)
        start = time.perf_counter()
        vectors = embed_in_batches(embedder, database, desc=f"embedding database ({name})")
        index_seconds = time.perf_counter() - start
        log.info("%s: database of %d embedded in %.1f s (%.0f seq/s)", name, len(database),
                 index_seconds, len(database) / max(index_seconds, 1e-9))
        for method in reranks:
            run = run_model(name, embedder, queries, database, top_k=top_k,
                            rerank_method=method, threads=threads, database_vectors=vectors)
            run.seconds["index"] = index_seconds
            if validation:
                check = run_model(name, embedder, validation, database, top_k=top_k,
                                  rerank_method=method, threads=threads,
                                  database_vectors=vectors)
                run.threshold = calibrate_threshold(check, validation, split)
            run.details["database_seq_per_s"] = round(len(database) / max(index_seconds, 1e-9))
            runs.append(run)
            log.info("%s: %d queries, %.4f s/query", run.name, len(queries), run.seconds_per_query)
    for name in peers:
        runs.append(peer_run(name, queries, database, threads=threads, evalue=evalue,
                             max_hits=top_k))
    summaries = [score_run(run, queries, split) for run in runs]
    sampled = "" if max_queries_per_family is None else (
        f"At most {max_queries_per_family} queries per family (deterministic sample). ")
    meta = {
        "split": split.source,
        "queries": len(queries),
        "families": len({q.family for q in queries}),
        "validation_queries": len(validation),
        "database": len(database),
        "top_k": top_k,
        "evalue": evalue,
        "warnings": warnings,
        "note": (f"{sampled}Ours: exact cosine top-{top_k} (numpy, not HNSW), then re-ranking; "
                 f"threshold from validation families. Peers: E ≤ {evalue}, sense strand."),
    }
    return build_report(runs, summaries, meta=meta)
