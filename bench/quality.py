"""Retrieval quality of every tool on the same queries and database (the ``evaluate`` protocol).

Everything that scores is :mod:`rinalmo_search.evaluation` (the split reader, labelling,
metrics, our two-stage search with its thresholds, the peers including the one-sequence-CM
``cmsearch``, and the warnings about a model's training split); this module only chooses a
smaller setting than ``rinalmo-search evaluate`` so that a benchmark run fits in the time it
has:

* a deterministic sample of ``families`` test families (and as many validation families, which
  fix our score threshold), at most ``queries_per_family`` queries each;
* the database is those families' complete membership plus whole *training* families drawn at
  random as decoys until about ``db_size`` sequences (``db_size=0``: every sequence, as
  ``evaluate`` does);
* ``cmsearch-1seq`` runs on the first ``cm_queries`` queries only (one per family); every tool
  is also scored on that subset, so that row compares like with like.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rinalmo_search.embedder import load_embedder

from rinalmo_search.errors import RinalmoSearchError
from rinalmo_search.evaluation.metrics import QueryResult
from rinalmo_search.evaluation.peers import SINGLE_CM
from rinalmo_search.evaluation.protocol import ToolRun, label_run, peer_run, score_run
from rinalmo_search.evaluation.runner import logged_split_warnings, model_runs
from rinalmo_search.evaluation.split import RetrievalSet
from rinalmo_search.seqio import SequenceRecord

log = logging.getLogger(__name__)


@dataclass
class QualitySetup:
    """The sampled split, its queries, and what was sampled (for the report)."""

    split: RetrievalSet
    queries: list[SequenceRecord]
    validation: list[SequenceRecord]
    note: str


@dataclass
class QualityResult:
    """Everything the report needs from the quality section."""

    meta: dict[str, object]
    runs: list[dict[str, object]] = field(default_factory=list)
    subset: dict[str, object] = field(default_factory=dict)
    pr_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    embeddings: dict[str, object] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _pick(rng: np.random.Generator, items: Sequence[str], n: int) -> list[str]:
    if n <= 0 or n >= len(items):
        return list(items)
    return sorted(rng.choice(list(items), size=n, replace=False).tolist())


def prepare(
    split: RetrievalSet,
    *,
    families: int,
    queries_per_family: int,
    db_size: int,
    seed: int = 0,
) -> QualitySetup:
    """Sample test/validation families, build the database and pick the queries.

    Arguments:
        split: a split written by ``rinalmo-search data prepare`` (see
            :func:`rinalmo_search.evaluation.split.load_retrieval_set`).
        families: test families to query (and validation families to calibrate); 0 = all.
        queries_per_family: at most this many queries per family.
        db_size: approximate database size (0 = every sequence).
        seed: sampling seed.
    """
    sizes = split.family_sizes()
    rng = np.random.default_rng(seed)
    eligible = {side: [f for f in split.families(side) if sizes[f] >= 4]
                for side in ("test", "validation")}
    chosen = {side: set(_pick(rng, eligible[side], families)) for side in eligible}
    keep = chosen["test"] | chosen["validation"]
    if db_size > 0:
        total = sum(sizes[f] for f in keep)
        decoys = [f for f in split.families("train")]
        for index in rng.permutation(len(decoys)):
            if total >= db_size:
                break
            keep.add(decoys[index])
            total += sizes[decoys[index]]
        database = [r for r in split.records if r.family in keep]
        family_split = {f: s for f, s in split.family_split.items() if f in keep}
    else:
        database = list(split.records)
        family_split = dict(split.family_split)
    for side in ("test", "validation"):  # unchosen test/validation families are not queried
        for family in eligible[side]:
            if family in family_split and family not in chosen[side]:
                family_split[family] = "train"
    sub = RetrievalSet(database, family_split, dict(split.family_clan), source=split.source,
                       fingerprint=split.fingerprint)
    queries = sub.queries("test", max_per_family=queries_per_family, seed=seed)
    validation = sub.queries("validation", max_per_family=queries_per_family, seed=seed)
    note = (
        f"{len({q.family for q in queries})} test families ({len(queries)} queries, at most "
        f"{queries_per_family} per family) and {len({q.family for q in validation})} "
        f"validation families ({len(validation)} queries) drawn from {split.source}; database "
        f"{len(database)} sequences of {len({r.family for r in database})} families"
        + ("" if db_size <= 0 else " (the drawn families plus random training families as "
           "decoys; `evaluate` uses every sequence)")
    )
    return QualitySetup(sub, queries, validation, note)
def pooled_pr_curve(results: Sequence[QueryResult], points: int = 200) -> dict[str, list[float]]:
    """Precision–recall over all queries' hits pooled and cut at every score (micro average).

    Recall is over every positive of every query (found or not), so a tool that reports few
    hits ends its curve early.
    """
    if not results:
        return {"precision": [], "recall": []}
    scores = np.concatenate([r.scores for r in results])
    relevant = np.concatenate([r.relevant for r in results]).astype(np.float64)
    n_pos = sum(r.n_pos for r in results)
    if scores.size == 0 or n_pos == 0:
        return {"precision": [], "recall": []}
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(relevant[order])
    precision = tp / np.arange(1, tp.size + 1)
    recall = tp / n_pos
    take = np.unique(np.linspace(0, tp.size - 1, min(points, tp.size)).astype(int))
    return {"precision": precision[take].round(4).tolist(),
            "recall": recall[take].round(4).tolist()}


def _summarise(run: ToolRun, summary: dict[str, dict[str, float]]) -> dict[str, object]:
    return {
        "tool": run.name,
        "queries": run.n_queries,
        "seconds": {k: round(v, 3) for k, v in run.seconds.items()},
        "seconds_per_query": run.seconds_per_query,
        "threshold": run.threshold,
        "details": {k: v for k, v in run.details.items()},
        "metrics": summary,
    }


def run_quality(
    setup: QualitySetup,
    *,
    models: Sequence[str],
    peers: Sequence[str],
    reranks: Sequence[str] = ("none", "sw"),
    cm_queries: int = 0,
    cm_calibrate_mb: float = 0.01,
    top_k: int = 1000,
    evalue: float = 1e-3,
    threads: int = 1,
) -> QualityResult:
    """Run our models (each re-ranking method) and the peers on ``setup``; score everything.

    Models that cannot be loaded here (e.g. RiNALMo weights not downloaded) are skipped and
    listed with the reason. A model trained on this split's test families (or on another
    split) is run, and its warning goes into ``meta["warnings"]`` and the report.
    """
    split, queries, validation = setup.split, setup.queries, setup.validation
    database = split.records
    result = QualityResult(meta={
        "note": setup.note, "queries": len(queries),
        "families": len({q.family for q in queries}),
        "validation_queries": len(validation), "database": len(database),
        "top_k": top_k, "evalue": evalue, "threads": threads,
    })
    runs: list[ToolRun] = []
    loaded = []
    for name in models:
        try:
            start = time.perf_counter()
            embedder = load_embedder(name)
            load_seconds = time.perf_counter() - start
        except (RinalmoSearchError, OSError, ImportError) as error:
            result.skipped[name] = str(error).splitlines()[0]
            log.warning("model %s skipped: %s", name, result.skipped[name])
            continue
        loaded.append(name)
        model_tool_runs, vectors = model_runs(name, embedder, split, queries, validation,
                                              reranks=reranks, top_k=top_k, threads=threads)
        for run in model_tool_runs:
            run.details["model_load_s"] = round(load_seconds, 3)
        runs += model_tool_runs
        if not result.embeddings:
            test_families = {q.family for q in queries}
            rows = [i for i, r in enumerate(database) if r.family in test_families]
            result.embeddings = {
                "model": name,
                "vectors": vectors[rows],
                "family": [database[i].family for i in rows],
                "clan": [database[i].clan for i in rows],
            }
    result.meta["warnings"] = logged_split_warnings(loaded, split)
    for name in peers:
        try:
            runs.append(peer_run(name, queries, database, threads=threads, evalue=evalue,
                                 max_hits=top_k))
        except RinalmoSearchError as error:
            result.skipped[name] = str(error).splitlines()[0]
    subset: list[SequenceRecord] = []
    if cm_queries > 0:
        seen: set[str] = set()
        for query in queries:
            if query.family not in seen:
                seen.add(query.family)
                subset.append(query)
        subset = subset[:cm_queries]
        try:
            runs.append(peer_run(SINGLE_CM, subset, database, threads=threads, evalue=evalue,
                                 max_hits=top_k, calibrate_mb=cm_calibrate_mb))
        except RinalmoSearchError as error:
            result.skipped[SINGLE_CM] = str(error).splitlines()[0]
            subset = []
    for run in runs:
        run_queries = subset if run.name == SINGLE_CM else queries
        result.runs.append(_summarise(run, score_run(run, run_queries, split)))
        result.pr_curves[run.name] = pooled_pr_curve(label_run(run, run_queries, split))
    if subset:
        result.subset = {
            "queries": len(subset),
            "calibration": f"cmcalibrate -L {cm_calibrate_mb}",
            "rows": [{"tool": run.name,
                      "metrics": score_run(run, subset, split)["all"]} for run in runs],
        }
    return result
