"""Search speed against BLASTn: one command, one run, the same machine and the same queries.

For each database size (nested databases of real Rfam seeds, then mutated copies of them, as
:func:`scaling.nested_databases` builds them) it times:

* **BLASTn** (``-task blastn``, ``--threads``): one process per query (p50/p95), and all
  queries in one process (batch s/query); ``makeblastdb`` is the index build.
* **MMseqs2** at ``--mmseqs-sizes`` only (each search rebuilds its k-mer table: tens of
  seconds per query here): the same two ways.
* **ours on a Milvus server** (``--server-uri``, e.g. what ``rinalmo-search server start``
  printed): the product's ``index`` path into collection ``speed_<size>`` (HNSW, default
  settings), then, with the model loaded and the store open (warm), each query alone through
  :func:`~rinalmo_search.pipeline.search_records` (p50/p95) and all queries in one call (batch
  s/query), three ways: stage 1 alone (``--rerank none``), stage 1 + Smith–Waterman
  (``--feedback off``), and the default search (+ pseudo-relevance feedback searches). Then a few
  queries as whole processes (``rinalmo-search search q.fa --db URI``: what a Galaxy job or a
  shell user pays, start-up included). A collection that already holds the size's records is
  reused, with the build time recorded when it was built (``build-*.json`` in ``--state``).
* **ours on Milvus Lite** at ``--lite-sizes``: the same, into a Lite folder under ``--state``.

Ratios are to BLASTn's figure of the same size from the same run, and each tool's growth
exponent is the slope of log(p50) against log(size). Output: ``speed.json`` and ``speed.md``.

Usage::

    rinalmo-search server start                     # prints URI http://127.0.0.1:19530
    python bench/speed.py --sizes 62520,1000000 --server-uri http://127.0.0.1:19530 \\
        --lite-sizes 62520 --mmseqs-sizes 62520 --out bench/results/speed
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from rinalmo_search.embedder import DEFAULT_MODEL, load_embedder
from rinalmo_search.milvus import VectorStore
from scaling import (
    Timing,
    growth_exponent,
    nested_databases,
    time_blastn,
    time_mmseqs,
    timed_index,
    write_numbered_fasta,
)
from tqdm import tqdm

from rinalmo_search.feedback import DEFAULT_FEEDBACK
from rinalmo_search.pipeline import search_records
from rinalmo_search.rerank import DEFAULT_RERANK
from rinalmo_search.seqio import SequenceRecord, read_fasta, write_fasta

log = logging.getLogger("bench.speed")
REPO = Path(__file__).resolve().parent.parent


def _build_or_reuse(
    store: VectorStore, database: Sequence[SequenceRecord], embedder, state: Path, label: str
) -> dict[str, object]:
    """Index ``database`` into ``store`` unless it already holds exactly those records."""
    record = state / f"build-{label}.json"
    if store.exists():
        store.check_model(embedder.info)
        if store.count() == len(database) and record.is_file():
            built = json.loads(record.read_text())
            built["reused"] = True
            log.info("%s: reusing the collection built earlier (%s)", label, record)
            return built
    report, inserted, waited = timed_index(database, store, embedder)
    built = {
        "index_seconds": round(inserted + waited, 1),
        "embed_insert_seconds": round(inserted, 1),
        "hnsw_wait_seconds": round(waited, 1),
        "stored": report.n_total,
        "built_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    record.write_text(json.dumps(built, indent=2))
    built["reused"] = False
    return built


def build(
    store_kind: str, db: str, database: Sequence[SequenceRecord], embedder, state: Path
) -> dict[str, object]:
    """Open collection ``speed_<size>`` at ``db`` and build it, or reuse it when complete."""
    size = len(database)
    with VectorStore(db, collection=f"speed_{size}") as writer:
        return _build_or_reuse(writer, database, embedder, state, f"{store_kind}-{size}")


def _process_latencies(
    queries: Sequence[SequenceRecord], db: str, collection: str, work: Path
) -> list[float]:
    """Wall time of ``rinalmo-search search`` run as a new process, one query each."""
    program = Path(sys.executable).with_name("rinalmo-search")
    latencies = []
    for index, query in enumerate(queries):
        fasta = work / f"process-q{index}.fa"
        write_fasta([query], fasta)
        command = [str(program), "-q", "search", str(fasta), "--db", db,
                   "--collection", collection, "--out", str(work / "process-hits.tsv")]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=work)  # cwd: keep our milvus/ off sys.path
        latencies.append(time.perf_counter() - start)
    return latencies


def time_ours(
    store_kind: str,
    db: str,
    database: Sequence[SequenceRecord],
    queries: Sequence[SequenceRecord],
    state: Path,
    work: Path,
    *,
    top_k: int,
    threads: int,
    process_queries: int,
) -> list[Timing]:
    """Our default search (and stage 1 alone) on one store: warm single, batch, as a process."""
    size = len(database)
    collection = f"speed_{size}"
    start = time.perf_counter()
    embedder = load_embedder(DEFAULT_MODEL)
    load_seconds = time.perf_counter() - start
    built = build(store_kind, db, database, embedder, state)
    # searched through a store that has not written, as another process would (a writer's own
    # reads are Strong: on a server each waits for a time tick)
    store = VectorStore(db, collection=collection)
    try:
        search_records(queries[:2], store, embedder, top_k=top_k)  # load, warm the caches
        timings = []
        # stage 1 alone; stage 1 + Smith-Waterman; the default search (+ feedback searches)
        variants = (("stage1", "none", None), ("sw", DEFAULT_RERANK, None),
                    ("default", DEFAULT_RERANK, DEFAULT_FEEDBACK))
        for label, method, feedback in variants:
            run = partial(search_records, store=store, embedder=embedder, top_k=top_k,
                          rerank=method, threads=threads, feedback=feedback)
            latencies = []
            for query in tqdm(queries, desc=f"{store_kind} {label} {size}", leave=False):
                start = time.perf_counter()
                run([query])
                latencies.append(time.perf_counter() - start)
            start = time.perf_counter()
            run(list(queries))
            batch = (time.perf_counter() - start) / len(queries)
            details: dict[str, object] = {
                "store": store_kind,
                "model_load_s": round(load_seconds, 3),
                "build": built,
                "rerank": method,
                "feedback": feedback.label() if feedback else "off",
            }
            timings.append(Timing(f"ours-{store_kind}-{label}", size,
                                  float(built["index_seconds"]), latencies, batch, details))
    finally:
        store.close()
    if process_queries and store_kind == "server":
        process = _process_latencies(queries[:process_queries], db, collection, work)
        timings[-1].details["process_p50_s"] = float(np.percentile(process, 50))
        timings[-1].details["process_latencies_s"] = [round(x, 3) for x in process]
    return timings


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    load = os.getloadavg()
    return {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    """Ratios to BLASTn of the same size and growth exponents, per tool."""
    blast = {r["size"]: r for r in rows if r["tool"] == "blastn"}
    for row in rows:
        reference = blast.get(row["size"])
        for key in ("p50", "batch_seconds_per_query"):
            mine, theirs = row.get(key), reference.get(key) if reference else None
            row[f"{key}_ratio_to_blastn"] = (mine / theirs) if mine and theirs else None
    exponents = {}
    for tool in dict.fromkeys(str(r["tool"]) for r in rows):
        mine = [r for r in rows if r["tool"] == tool]
        exponents[tool] = growth_exponent([r["size"] for r in mine], [r["p50"] for r in mine])
    return {"rows": rows, "exponents": exponents}


def markdown(result: dict[str, object]) -> str:
    """The table the README quotes."""
    lines = [
        f"Measured {result['machine']['date']} on {result['machine']['cpus']} cores "
        f"(load at start {result['machine']['load_average_at_start']}); "
        f"{result['n_queries']} queries, top-{result['top_k']}, {result['threads']} threads; "
        f"{result['database']}.",
        "",
        "| tool | size | single p50 (ms) | p95 (ms) | ×BLASTn p50 | batch s/query | ×BLASTn batch "
        "| one query as a process (s) | index build (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: object) -> str:
        return "" if value is None else f"{float(value) * 1000:.1f}"

    def ratio(value: object) -> str:
        return "" if value is None else f"{float(value):.2f}"

    for r in result["rows"]:
        batch = r.get("batch_seconds_per_query")
        process = r["details"].get("process_p50_s")
        lines.append(
            f"| {r['tool']} | {r['size']:,} | {ms(r['p50'])} | {ms(r['p95'])} | "
            f"{ratio(r.get('p50_ratio_to_blastn'))} | {'' if batch is None else f'{batch:.4f}'} "
            f"| {ratio(r.get('batch_seconds_per_query_ratio_to_blastn'))} | "
            f"{'' if process is None else f'{process:.2f}'} | {r['index_seconds']:.1f} |"
        )
    lines += ["", "Growth exponent of single-query p50 (log-log slope over the sizes):", ""]
    lines += [f"- {tool}: {'' if e is None else f'{e:.2f}'}"
              for tool, e in result["exponents"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="62520,1000000", help="database sizes (nested)")
    parser.add_argument("--server-uri", help="Milvus server URI (rinalmo-search server start)")
    parser.add_argument("--lite-sizes", default="", help="sizes also timed on Milvus Lite")
    parser.add_argument("--mmseqs-sizes", default="", help="sizes MMseqs2 is timed at")
    parser.add_argument("--queries", type=int, default=40, help="queries timed at each size")
    parser.add_argument("--slow-queries", type=int, default=3, help="single MMseqs2 queries")
    parser.add_argument("--process-queries", type=int, default=5,
                        help="queries timed as one 'rinalmo-search search' process each")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rfam", type=Path, default=REPO.parent / "shared" / "data" / "rfam")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speed",
                        help="where speed.json and speed.md go")
    parser.add_argument("--state", type=Path,
                        default=Path.home() / ".cache" / "rinalmo-search" / "bench-speed",
                        help="Milvus Lite databases and build records kept between runs")
    parser.add_argument("--build-only", action="store_true",
                        help="only build (or check) the server collections, time nothing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    lite_sizes = {int(s) for s in args.lite_sizes.split(",") if s}
    mmseqs_sizes = {int(s) for s in args.mmseqs_sizes.split(",") if s}
    args.out.mkdir(parents=True, exist_ok=True)
    args.state.mkdir(parents=True, exist_ok=True)
    records = read_fasta(args.rfam / "sequences.fasta")
    # one record per id, as `index` stores them (a locus seeding two families is kept once)
    records = list({r.id: r for r in records}.values())
    database, queries = nested_databases(records, sizes[-1], n_queries=args.queries,
                                         seed=args.seed)
    result: dict[str, object] = {
        "machine": machine(), "sizes": sizes, "n_queries": len(queries), "top_k": args.top_k,
        "threads": args.threads,
        "database": f"{min(len(records), sizes[-1]):,} real Rfam seeds, then mutated copies "
                    "(substitutions 0.15, indels 0.015 each); queries are real seeds in every size",
    }
    rows: list[dict[str, object]] = []
    for size in sizes:
        subset = database[:size]
        with tempfile.TemporaryDirectory(prefix=f"speed-{size}-") as folder:
            work = Path(folder)
            lite = str(args.state / f"lite-{size}.db")
            stores = ([("server", args.server_uri)] if args.server_uri else []) + (
                [("lite", lite)] if size in lite_sizes else [])
            if args.build_only:
                embedder = load_embedder(DEFAULT_MODEL)
                for kind, db in stores:
                    log.info("%s", build(kind, db, subset, embedder, args.state))
                continue
            if args.server_uri:
                rows += [t.as_dict() for t in time_ours(
                    "server", args.server_uri, subset, queries, args.state, work,
                    top_k=args.top_k, threads=args.threads, process_queries=args.process_queries,
                )]
            db_fa = work / "db.fa"
            write_numbered_fasta(subset, db_fa)
            rows.append(time_blastn(db_fa, queries, work, size, top_k=args.top_k, evalue=10.0,
                                    threads=args.threads).as_dict())
            if size in mmseqs_sizes:
                rows.append(time_mmseqs(db_fa, queries[: args.slow_queries], work, size,
                                        top_k=args.top_k, evalue=10.0,
                                        threads=args.threads).as_dict())
            if size in lite_sizes:
                rows += [t.as_dict() for t in time_ours(
                    "lite", lite, subset, queries, args.state, work, top_k=args.top_k,
                    threads=args.threads, process_queries=0)]
    if args.build_only:
        return 0
    result.update(summarise(rows))
    (args.out / "speed.json").write_text(json.dumps(result, indent=2))
    (args.out / "speed.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
