"""CPU speed of the default search, stage by stage, against BLASTn and nhmmer in the same run.

Measures on the sequences of a prepared split (database = all of them):

* embedding throughput of a model: batches of 512 and one sequence at a time (sequences/s;
  the benchmark, not a test, holds the speed figure);
* stage 1 (exact cosine top-K over the database, numpy) and stage 2 (Smith–Waterman re-ranking
  of the K candidates) per query;
* BLASTn (``makeblastdb`` excluded, reported apart) and nhmmer per query on the same queries.

Example::

    python bench/compact_speed.py --split /tmp/split --model compact-kmer --queries 100
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np
from rinalmo_search.embedder import load_embedder

from rinalmo_search.evaluation.peers import run_peer
from rinalmo_search.evaluation.protocol import embed_in_batches, exact_search
from rinalmo_search.evaluation.split import load_retrieval_set
from rinalmo_search.rerank import rerank

log = logging.getLogger("compact_speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", required=True)
    parser.add_argument("--model", default="compact-kmer")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peers", default="blastn,nhmmer")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    split = load_retrieval_set(args.split)
    database = split.records
    rng = np.random.default_rng(0)
    all_queries = split.queries("test")
    queries = [all_queries[i] for i in sorted(rng.choice(len(all_queries),
                                                         size=min(args.queries, len(all_queries)),
                                                         replace=False))]
    embedder = load_embedder(args.model)
    result: dict[str, object] = {"model": embedder.info.tag, "database": len(database),
                                 "queries": len(queries), "cpus": os.cpu_count(),
                                 "load_average": os.getloadavg()[0]}
    start = time.perf_counter()
    vectors = embed_in_batches(embedder, database)
    result["embed_batch_seq_per_s"] = len(database) / (time.perf_counter() - start)
    start = time.perf_counter()
    for query in queries:
        embedder.embed([query.sequence])
    result["embed_single_seq_per_s"] = len(queries) / (time.perf_counter() - start)
    start = time.perf_counter()
    query_vectors = embed_in_batches(embedder, queries)
    shortlists = [exact_search(query_vectors[i : i + 1], vectors, database,
                               top_k=args.top_k)[0] for i in range(len(queries))]
    result["stage1_s_per_query"] = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    rerank(queries, shortlists, method="sw", threads=args.threads)
    result["stage2_s_per_query"] = (time.perf_counter() - start) / len(queries)
    result["ours_s_per_query"] = result["stage1_s_per_query"] + result["stage2_s_per_query"]
    for peer in [p for p in args.peers.split(",") if p]:
        run = run_peer(peer, queries, database, threads=args.threads)
        result[f"{peer}_s_per_query"] = (run.seconds - run.prepare_seconds) / len(queries)
        result[f"{peer}_prepare_s"] = run.prepare_seconds
    for key, value in result.items():
        log.info("%-24s %s", key, f"{value:.4g}" if isinstance(value, float) else value)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
