"""Benchmark the vector store: Milvus (Lite or a server) against FAISS HNSW and exact search.

For each database size it measures, in one run and on one machine:

* insert throughput (vectors/s through :class:`~rinalmo_search.milvus.VectorStore`, which
  includes the de-duplication lookup), flush time and HNSW build time;
* query latency p50/p95 of single-query top-10 and top-100 searches;
* recall@10 and recall@100 against exact (numpy) inner-product search, tie-aware: a returned
  hit counts if its exact score reaches the k-th best exact score;
* the same numbers for ``faiss.IndexHNSWFlat`` at the same M / efConstruction / ef — the
  index the RiNALMo homology-search paper used — and the Milvus/FAISS ratios.

Data: k-mer embeddings (the ``kmer`` baseline model) of the Rfam seed sequences, topped up with
mutated copies (:func:`rinalmo_search.simulate.mutate`, rates of 3–15 %) to reach the size, so
the vectors have the family cluster structure of real embeddings; queries are fresh mutated
copies not in the database.
``--data random`` adds uniform random unit vectors, the worst case for HNSW.

Examples:
    python bench/milvus_bench.py                          # 10k Rfam-like + 10k random, Lite
    python bench/milvus_bench.py --sizes 10000 100000 --data rfam --json bench/out/milvus.json
    python bench/milvus_bench.py --uri http://127.0.0.1:19530 --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("milvus_bench")

REPO = Path(__file__).resolve().parent.parent
RFAM = REPO.parent / "shared" / "data" / "rfam" / "sequences.fasta"
INSERT_BATCH = 1000


@dataclass
class EngineResult:
    """Numbers for one engine at one size."""

    engine: str
    insert_s: float = 0.0
    insert_per_s: float = 0.0
    build_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    index: str = ""
    #: ef → {"recall@10": ..., "p50_ms": ...} for the extra ef values of --ef-sweep
    sweep: dict[int, dict[str, float]] = field(default_factory=dict)


@dataclass
class SizeResult:
    """All engines at one database size and data kind."""

    data: str
    size: int
    dim: int
    queries: int
    M: int
    ef_construction: int
    ef: int
    engines: list[EngineResult] = field(default_factory=list)


# ── data ────────────────────────────────────────────────────────────────────────────────────


def rfam_like(size: int, n_queries: int, seed: int) -> tuple[list, np.ndarray, np.ndarray]:
    """Records and k-mer vectors of Rfam seeds (+ mutated copies), and query vectors."""
    from rinalmo_search.embedder import load_embedder

    from rinalmo_search.seqio import SequenceRecord, read_fasta
    from rinalmo_search.simulate import mutate

    logging.getLogger("rinalmo_search.seqio").setLevel(logging.ERROR)
    rng = np.random.default_rng(seed)
    originals = read_fasta(RFAM)
    order = rng.permutation(len(originals))
    records: list[SequenceRecord] = [originals[i] for i in order[:size]]
    copy = 0
    while len(records) < size:
        source = originals[int(order[copy % len(originals)])]
        copy += 1
        records.append(
            SequenceRecord(
                id=f"{source.id}_m{copy}",
                sequence=mutate(source.sequence, rng, rate=rng.uniform(0.03, 0.15)),
                family=source.family,
                clan=source.clan,
                source="mutated",
            )
        )
    query_sources = [records[int(i)] for i in rng.choice(len(records), n_queries, replace=False)]
    query_sequences = [
        mutate(r.sequence, rng, rate=rng.uniform(0.03, 0.15)) for r in query_sources
    ]
    embedder = load_embedder("kmer")
    started = time.perf_counter()
    vectors = np.concatenate(
        [
            embedder.embed([r.sequence for r in records[i : i + 5000]])
            for i in range(0, len(records), 5000)
        ]
    )
    queries = embedder.embed(query_sequences)
    seconds = time.perf_counter() - started
    log.info("embedded %d sequences in %.1f s", len(records) + n_queries, seconds)
    return records, vectors, queries


def uniform_random(
    size: int, n_queries: int, dim: int, seed: int
) -> tuple[list, np.ndarray, np.ndarray]:
    """Records with random sequences and uniform random unit vectors (HNSW's worst case)."""
    from rinalmo_search.embedder import l2_normalise

    from rinalmo_search.seqio import SequenceRecord

    rng = np.random.default_rng(seed)
    vectors = l2_normalise(rng.standard_normal((size, dim)).astype(np.float32))
    queries = l2_normalise(rng.standard_normal((n_queries, dim)).astype(np.float32))
    letters = np.array(list("ACGU"))
    records = [
        SequenceRecord(id=f"r{i}", sequence="".join(rng.choice(letters, 60))) for i in range(size)
    ]
    return records, vectors, queries


# ── measurements ────────────────────────────────────────────────────────────────────────────


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (indices, scores) by inner product, best first."""
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)


def recall(found: list[list[int]], queries: np.ndarray, vectors: np.ndarray,
           kth_scores: np.ndarray, k: int) -> float:
    """Tie-aware recall@k: hits whose exact score reaches the exact k-th score, over k."""
    total = 0
    for q, ids in enumerate(found):
        ids = [i for i in ids[:k] if i >= 0]
        if ids:
            exact = vectors[ids] @ queries[q]
            total += int((exact >= kth_scores[q] - 1e-5).sum())
    return total / (k * len(found))


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000.0
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def run_milvus(uri: str, records: list, vectors: np.ndarray, queries: np.ndarray,
               truth: dict[int, np.ndarray], args: argparse.Namespace) -> EngineResult:
    from rinalmo_search.embedder import ModelInfo
    from rinalmo_search.milvus import IndexSettings, VectorStore

    settings = IndexSettings(M=args.M, ef_construction=args.ef_construction, ef=args.ef)
    model = ModelInfo("bench", "1", vectors.shape[1])
    collection = f"bench_{os.getpid()}_{len(records)}"
    result = EngineResult(engine="milvus-lite" if not uri.startswith("http") else "milvus-server")
    position = {r.id: i for i, r in enumerate(records)}
    with VectorStore(
        uri, collection=collection, index=settings, consistency=args.consistency
    ) as store:
        store.drop_all()
        store.ensure_collection(model)
        started = time.perf_counter()
        for start in range(0, len(records), INSERT_BATCH):
            stop = start + INSERT_BATCH
            store.insert(records[start:stop], vectors[start:stop])
        store.flush()
        result.insert_s = time.perf_counter() - started
        result.insert_per_s = len(records) / result.insert_s
        result.build_s = store.wait_for_index(timeout=args.build_timeout, poll=1.0)
        report = store.verify_index()
        result.index = report.summary()
        log.info("%s: %s", result.engine, result.index)
        for k in args.top_k:
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                (hits,) = store.search(query[None, :], top_k=k)
                times.append(time.perf_counter() - started)
                found.append([position[h.target_id] for h in hits])
            result.latency_ms[f"top{k}"] = percentiles(times)
            result.recall[f"@{k}"] = recall(found, queries, vectors, truth[k], k)
        for ef in args.ef_sweep:
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                (hits,) = store.search(query[None, :], top_k=10, ef=ef)
                times.append(time.perf_counter() - started)
                found.append([position[h.target_id] for h in hits])
            result.sweep[ef] = {
                "recall@10": recall(found, queries, vectors, truth[10], 10),
                "p50_ms": percentiles(times)["p50"],
            }
        if not args.keep:
            store.drop_all()
    return result


def run_faiss(vectors: np.ndarray, queries: np.ndarray, truth: dict[int, np.ndarray],
              args: argparse.Namespace) -> EngineResult:
    import faiss

    result = EngineResult(engine="faiss-hnsw")
    index = faiss.IndexHNSWFlat(vectors.shape[1], args.M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    started = time.perf_counter()
    index.add(np.ascontiguousarray(vectors))
    result.build_s = time.perf_counter() - started
    result.insert_s = result.build_s
    result.insert_per_s = len(vectors) / result.build_s
    result.index = (
        f"IndexHNSWFlat M={index.hnsw.nb_neighbors(1)} efConstruction={args.ef_construction}"
    )
    for k in args.top_k:
        index.hnsw.efSearch = max(args.ef, k)
        times, found = [], []
        for query in queries:
            started = time.perf_counter()
            _, ids = index.search(query[None, :], k)
            times.append(time.perf_counter() - started)
            found.append([int(i) for i in ids[0]])
        result.latency_ms[f"top{k}"] = percentiles(times)
        result.recall[f"@{k}"] = recall(found, queries, vectors, truth[k], k)
    for ef in args.ef_sweep:
        index.hnsw.efSearch = ef
        times, found = [], []
        for query in queries:
            started = time.perf_counter()
            _, ids = index.search(query[None, :], 10)
            times.append(time.perf_counter() - started)
            found.append([int(i) for i in ids[0]])
        result.sweep[ef] = {
            "recall@10": recall(found, queries, vectors, truth[10], 10),
            "p50_ms": percentiles(times)["p50"],
        }
    return result


def run_size(data: str, size: int, uri: str, args: argparse.Namespace) -> SizeResult:
    if data == "rfam":
        records, vectors, queries = rfam_like(size, args.queries, args.seed)
    else:
        records, vectors, queries = uniform_random(size, args.queries, 512, args.seed)
    result = SizeResult(data, size, int(vectors.shape[1]), len(queries), args.M,
                        args.ef_construction, args.ef)
    truth: dict[int, np.ndarray] = {}
    started = time.perf_counter()
    exact_ms: list[float] = []
    for k in sorted(set(args.top_k) | {10}):
        _, scores = exact_top(vectors, queries, k)
        truth[k] = scores[:, -1]
    for query in queries[: min(50, len(queries))]:
        t0 = time.perf_counter()
        exact_top(vectors, query[None, :], max(args.top_k))
        exact_ms.append(time.perf_counter() - t0)
    exact = EngineResult(engine="exact-numpy", latency_ms={"top100": percentiles(exact_ms)},
                         recall={f"@{k}": 1.0 for k in args.top_k})
    log.info("exact search of %d queries in %.1f s", len(queries), time.perf_counter() - started)
    result.engines.append(exact)
    log.info("[%s %d] FAISS HNSW ...", data, size)
    result.engines.append(run_faiss(vectors, queries, truth, args))
    log.info("[%s %d] Milvus (%s) ...", data, size, uri)
    result.engines.append(run_milvus(uri, records, vectors, queries, truth, args))
    return result


# ── report ──────────────────────────────────────────────────────────────────────────────────


def format_table(results: list[SizeResult]) -> str:
    lines = []
    header = (f"{'data':<7}{'size':>8}  {'engine':<14}{'insert/s':>10}{'build s':>9}"
              f"{'p50@10':>8}{'p95@10':>8}{'p50@100':>9}{'p95@100':>9}{'R@10':>7}{'R@100':>7}")
    lines.append(header)
    lines.append("-" * len(header))
    for size in results:
        for e in size.engines:
            lat10 = e.latency_ms.get("top10", {})
            lat100 = e.latency_ms.get("top100", {})
            lines.append(
                f"{size.data:<7}{size.size:>8}  {e.engine:<14}"
                f"{e.insert_per_s:>10.0f}{e.build_s:>9.1f}"
                f"{lat10.get('p50', float('nan')):>8.2f}{lat10.get('p95', float('nan')):>8.2f}"
                f"{lat100.get('p50', float('nan')):>9.2f}{lat100.get('p95', float('nan')):>9.2f}"
                f"{e.recall.get('@10', float('nan')):>7.3f}"
                f"{e.recall.get('@100', float('nan')):>7.3f}"
            )
        engines = {e.engine: e for e in size.engines}
        milvus = next(e for e in size.engines if e.engine.startswith("milvus"))
        faiss_result = engines["faiss-hnsw"]
        ratios = []
        for k in ("top10", "top100"):
            if k in milvus.latency_ms and k in faiss_result.latency_ms:
                ratio = milvus.latency_ms[k]["p50"] / faiss_result.latency_ms[k]["p50"]
                ratios.append(f"p50 {k} {ratio:.1f}x")
        ratio = (milvus.insert_s + milvus.build_s) / faiss_result.build_s
        ratios.append(f"insert+build time {ratio:.2f}x")
        ratios.append(f"recall@10 {milvus.recall['@10'] - faiss_result.recall['@10']:+.3f}")
        lines.append(f"{'':15}  Milvus/FAISS: " + ", ".join(ratios))
        lines.append(f"{'':15}  {milvus.engine} index: {milvus.index}")
        for e in (faiss_result, milvus):
            if e.sweep:
                points = ", ".join(
                    f"ef={ef}: R@10 {v['recall@10']:.3f} p50 {v['p50_ms']:.1f} ms"
                    for ef, v in sorted(e.sweep.items())
                )
                lines.append(f"{'':15}  {e.engine} ef sweep: {points}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--data", nargs="+", choices=("rfam", "random"), default=["rfam", "random"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--M", type=int, default=64)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, default=128)
    parser.add_argument(
        "--ef-sweep", type=int, nargs="*", default=[64, 512], metavar="EF",
        help="extra search ef values to measure recall@10 and p50 at",
    )
    parser.add_argument("--uri", default="", help="Milvus server URI (default: a Lite file)")
    parser.add_argument(
        "--consistency", default="Strong", choices=("Strong", "Session", "Bounded", "Eventually"),
        help="Milvus search consistency (a server waits ~200 ms per search for Strong)",
    )
    parser.add_argument("--threads", type=int, default=1, help="faiss/OpenMP threads (both)")
    parser.add_argument("--build-timeout", type=float, default=7200.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark collections")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("pymilvus", "milvus_lite", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import faiss

    faiss.omp_set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if "rfam" in args.data and not RFAM.is_file():
        parser.error(f"Rfam sequences not found at {RFAM}")
    workdir = Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    results = []
    try:
        for size in sorted(args.sizes):
            for data in args.data:
                uri = args.uri or str(workdir / f"{data}_{size}.db")
                results.append(run_size(data, size, uri, args))
                print(format_table(results), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
