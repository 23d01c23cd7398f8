"""Fit the re-ranker's merged score on validation families (logistic regression).

For validation-family queries of a prepared split, takes each query's stage-1 shortlist (exact
cosine top-K), aligns every candidate (Smith–Waterman, :mod:`rinalmo_search.rerank`), labels it
(same family 1, other clan 0, same clan other family left out) and fits
``P(same family) = sigmoid(a * alignment_score + b * embedding_score + c)`` by Newton's method.
Prints the coefficients to paste into ``rinalmo_search.rerank.MERGE_COEFFICIENTS`` and the
validation AP of alignment-only, embedding-only and merged rankings.

Example::

    python bench/calibrate_rerank.py --split /tmp/split --model compact-kmer --top-k 1000
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
from rinalmo_search.embedder import load_embedder

from rinalmo_search.evaluation.protocol import ToolRun, embed_in_batches, exact_search, score_run
from rinalmo_search.evaluation.split import load_split
from rinalmo_search.rerank import rerank

log = logging.getLogger("calibrate_rerank")


def fit_logistic(x: np.ndarray, y: np.ndarray, *, iterations: int = 50, l2: float = 1e-4
                 ) -> np.ndarray:
    """Weights (with the intercept last) of a logistic regression, by Newton's method."""
    design = np.hstack([x, np.ones((x.shape[0], 1))])
    w = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -50, 50)))
        gradient = design.T @ (p - y) + l2 * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(design.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", required=True)
    parser.add_argument("--model", default="kmer")
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--queries-per-family", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="", help="JSON file for the fit and its AP table")
    parser.add_argument("--save-pairs", default="", help="also save the labelled pairs (.npz)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    split = load_split(args.split)
    embedder = load_embedder(args.model)
    database = split.records
    queries = split.queries("valid", max_per_family=args.queries_per_family)
    vectors = embed_in_batches(embedder, database)
    query_vectors = embed_in_batches(embedder, queries)
    shortlists = exact_search(query_vectors, vectors, database, top_k=args.top_k + 1)
    ranked = rerank(queries, shortlists, method="sw", threads=args.threads)
    rows, labels = [], []
    for query, hits in zip(queries, ranked, strict=True):
        for hit in hits:
            if hit.target_id == query.id:
                continue
            if hit.family == query.family:
                labels.append(1.0)
            elif query.clan and hit.clan == query.clan:
                continue
            else:
                labels.append(0.0)
            rows.append((hit.alignment_score, hit.embedding_score))
    x, y = np.asarray(rows), np.asarray(labels)
    if args.save_pairs:
        keys = [(q.id, h.target_id) for q, hs in zip(queries, ranked, strict=True) for h in hs]
        np.savez(args.save_pairs, x=x, y=y, n_keys=len(keys))
    w = fit_logistic(x, y)
    log.info("fit on %d pairs (%d positives): a=%.4f b=%.4f c=%.4f", len(y), int(y.sum()), *w)
    table = {}
    for label, weights in {"alignment": (1.0, 0.0), "embedding": (0.0, 1.0),
                           "merged": (w[0], w[1])}.items():
        hits = {}
        for query, query_hits in zip(queries, ranked, strict=True):
            scored = [(h.target_id, weights[0] * h.alignment_score + weights[1] * h.embedding_score)
                      for h in query_hits]
            hits[query.id] = sorted(scored, key=lambda item: -item[1])
        summary = score_run(ToolRun(label, hits, {}, len(queries), 1), queries, split)
        table[label] = {b: round(v["ap"], 4) for b, v in summary.items()}
        log.info("validation AP, %s ranking: %s", label, table[label])
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"coefficients": list(map(float, w)), "pairs": len(y),
                       "positives": int(y.sum()), "ap": table, "model": args.model,
                       "split": split.source}, handle, indent=1)


if __name__ == "__main__":
    main()
