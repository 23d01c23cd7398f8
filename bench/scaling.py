"""Speed and scaling: per-query latency and index build time against database size.

Databases are nested (each size contains the smaller ones): the real Rfam seed sequences in a
fixed random order, then — past the 62.5k real ones — mutated copies of them (substitutions at
``rate``, insertions and deletions at ``rate/10`` each: :func:`rinalmo_search.simulate.mutate`).
Queries are the first real sequences of that order, so every database holds them.

Per tool and size:

* **ours** (each loadable model): the product's path — :func:`~rinalmo_search.pipeline.
  index_records` into a fresh Milvus Lite collection (HNSW, default settings), ``flush`` and
  :meth:`~rinalmo_search.milvus.VectorStore.wait_for_index` (index build = embed + insert +
  HNSW); then each query alone through :func:`~rinalmo_search.pipeline.search_records`
  (embed → HNSW top-``top_k`` → re-ranking), once with stage 1 only and once with the default
  re-ranker (whose stage 1 fetches the pipeline's default ``candidates``, 1,000, with their
  sequences: that Milvus Lite call, not the alignment, is most of its cost).
  Model load time is measured once, apart.
* **BLASTn** (:data:`time_blastn`): ``makeblastdb`` once (index build), then one ``blastn``
  process per query.
* **MMseqs2** (:data:`time_mmseqs`): ``createdb`` once (index build), then one
  ``easy-search`` per query against it. ``createindex`` is not used: MMseqs2's nucleotide k-mer
  index takes ~8 GB of RAM, which the shared 23 GB machine could not give (OOM-killed); each
  search builds that table instead, so MMseqs2 is timed on the first ``slow_queries`` queries
  only.

Each peer is also timed with all queries in one call (``batch``: seconds per query), which
amortises its start-up and database loading.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rinalmo_search.embedder import Embedder, load_embedder
from rinalmo_search.milvus import VectorStore
from tqdm import tqdm

from rinalmo_search.errors import RinalmoSearchError, ToolError
from rinalmo_search.evaluation.peers import blastn_command, mmseqs_command
from rinalmo_search.pipeline import IndexReport, index_records, search_records
from rinalmo_search.rerank import DEFAULT_RERANK
from rinalmo_search.seqio import SequenceRecord
from rinalmo_search.simulate import mutate
from rinalmo_search.tools import run_tool

log = logging.getLogger(__name__)

#: Peers too slow per query to time every query (MMseqs2 nucleotide search builds a ~8 GB
#: k-mer table for every search here): timed on the first ``slow_queries`` only.
SLOW_PEERS = ("mmseqs",)


def nested_databases(
    records: Sequence[SequenceRecord],
    max_size: int,
    *,
    n_queries: int,
    rate: float = 0.15,
    seed: int = 0,
) -> tuple[list[SequenceRecord], list[SequenceRecord]]:
    """The largest database (smaller ones are its prefixes) and the queries."""
    rng = np.random.default_rng(seed)
    real = [records[i] for i in rng.permutation(len(records))]
    database = real[:max_size]
    for index in tqdm(
        range(max_size - len(database)),
        desc="mutated copies",
        unit="seq",
        disable=max_size <= len(real),
        leave=False,
    ):
        source = real[index % len(real)]
        database.append(
            SequenceRecord(
                id=f"{source.id}|mut{index}",
                sequence=mutate(source.sequence, rng, rate=rate),
                family=source.family,
                clan=source.clan,
                description="mutated copy",
            )
        )
    return database, real[:n_queries]


def write_numbered_fasta(records: Sequence[SequenceRecord], path: Path) -> None:
    """``records`` as FASTA named ``s0, s1, ...`` (the peers' database and query files)."""
    with path.open("w") as handle:
        for index, record in enumerate(records):
            handle.write(f">s{index}\n{record.sequence}\n")


@dataclass
class Timing:
    """One tool at one database size."""

    tool: str
    size: int
    index_seconds: float
    latencies: list[float]
    batch_seconds_per_query: float | None = None
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON form with p50/p95 (seconds)."""
        lat = np.asarray(self.latencies)
        return {
            "tool": self.tool,
            "size": self.size,
            "index_seconds": round(self.index_seconds, 3),
            "p50": float(np.percentile(lat, 50)) if lat.size else None,
            "p95": float(np.percentile(lat, 95)) if lat.size else None,
            "n_queries": int(lat.size),
            "batch_seconds_per_query": self.batch_seconds_per_query,
            "details": self.details,
        }


def _time_each(
    queries: Sequence[SequenceRecord], work: Path, search: Callable[[Path], None], desc: str
) -> list[float]:
    latencies = []
    for index, query in enumerate(tqdm(queries, desc=desc, unit="query", leave=False)):
        path = work / f"q{index}.fa"
        write_numbered_fasta([query], path)
        start = time.perf_counter()
        search(path)
        latencies.append(time.perf_counter() - start)
    return latencies


@dataclass(frozen=True)
class PeerTimer:
    """How one peer is timed: its index once, then one process per query, then one batch call.

    Attributes:
        tool: the tool's name in the results (``blastn``, ``mmseqs``).
        program: the executable that must be on ``PATH``.
        index: ``(database FASTA, work folder) -> command`` that builds its database.
        search: ``(query FASTA, work folder, top_k, evalue, threads) -> command`` of one search.
        details: how it was run, for the report.
    """

    tool: str
    program: str
    index: Callable[[Path, Path], list[str]]
    search: Callable[[Path, Path, int, float, int], list[str]]
    details: dict[str, str]

    def __call__(
        self,
        database_fa: Path,
        queries: Sequence[SequenceRecord],
        work: Path,
        size: int,
        *,
        top_k: int,
        evalue: float,
        threads: int,
    ) -> Timing:
        """Time the index build, each query alone, and all queries in one call."""
        start = time.perf_counter()
        run_tool(self.index(database_fa, work))
        index_seconds = time.perf_counter() - start

        def search(query: Path) -> None:
            run_tool(self.search(query, work, top_k, evalue, threads))

        latencies = _time_each(queries, work, search, f"{self.tool} {size}")
        write_numbered_fasta(queries, work / "all.fa")
        start = time.perf_counter()
        search(work / "all.fa")
        batch = (time.perf_counter() - start) / len(queries)
        return Timing(self.tool, size, index_seconds, latencies, batch, dict(self.details))


#: BLASTn: makeblastdb once, then one blastn per query, then all queries in one call.
time_blastn = PeerTimer(
    tool="blastn",
    program="blastn",
    index=lambda fasta, work: [
        "makeblastdb", "-dbtype", "nucl", "-in", str(fasta), "-out", str(work / "bdb")
    ],
    search=lambda query, work, top_k, evalue, threads: blastn_command(
        query, work / "bdb", work / "blast.tsv", evalue=evalue, max_hits=top_k,
        threads=threads, outfmt="6 qseqid sseqid evalue bitscore",
    ),
    details={"index": "makeblastdb", "per_query": "blastn -task blastn (one process)"},
)  # fmt: skip

#: MMseqs2: createdb once (no createindex), then one easy-search per query, then one batch call.
time_mmseqs = PeerTimer(
    tool="mmseqs",
    program="mmseqs",
    index=lambda fasta, work: ["mmseqs", "createdb", str(fasta), str(work / "mdb"), "-v", "1"],
    search=lambda query, work, top_k, evalue, threads: mmseqs_command(
        query, work / "mdb", work / "mm.m8", work / "mtmp", evalue=evalue, max_hits=top_k,
        threads=threads,
    ),
    details={
        "index": "createdb (no createindex: its nucleotide k-mer index needs ~8 GB "
        "RAM and was OOM-killed on this shared machine)",
        "per_query": "easy-search against the createdb database (one process; "
        "builds its k-mer table, ~8 GB, at every call)",
    },
)  # fmt: skip

#: The peers :func:`run_scaling` can time, by name.
PEER_TIMERS = {timer.tool: timer for timer in (time_blastn, time_mmseqs)}


def timed_index(
    database: Sequence[SequenceRecord], store: VectorStore, embedder: Embedder
) -> tuple[IndexReport, float, float]:
    """Index ``database`` the product's way; the report, embed+insert and HNSW-wait seconds."""
    start = time.perf_counter()
    report = index_records(database, store, embedder, progress=True)
    inserted = time.perf_counter() - start
    start = time.perf_counter()
    store.wait_for_index()
    return report, inserted, time.perf_counter() - start


def time_ours(
    model: str,
    database: Sequence[SequenceRecord],
    queries: Sequence[SequenceRecord],
    work: Path,
    size: int,
    *,
    top_k: int,
    threads: int,
) -> list[Timing]:
    """Index into Milvus Lite (HNSW) and time single-query searches, without and with stage 2."""
    start = time.perf_counter()
    embedder = load_embedder(model)
    load_seconds = time.perf_counter() - start
    store = VectorStore(str(work / f"{model}.db"), collection="bench")
    try:
        report, inserted, waited = timed_index(database, store, embedder)
        index_seconds = inserted + waited
        search_records(queries[:1], store, embedder, top_k=top_k)  # load the collection
        timings = []
        for method in dict.fromkeys(("none", DEFAULT_RERANK)):
            latencies = []
            for query in tqdm(queries, desc=f"{model}+{method} {size}", unit="query", leave=False):
                start = time.perf_counter()
                search_records(
                    [query], store, embedder, top_k=top_k, rerank=method, threads=threads
                )
                latencies.append(time.perf_counter() - start)
            start = time.perf_counter()
            search_records(
                list(queries), store, embedder, top_k=top_k, rerank=method, threads=threads
            )
            batch = (time.perf_counter() - start) / len(queries)
            label = model if method == "none" else f"{model}+{method}"
            timings.append(
                Timing(
                    label,
                    size,
                    index_seconds,
                    latencies,
                    batch,
                    {
                        "model_load_s": round(load_seconds, 3),
                        "index_embed_insert_s": round(inserted, 3),
                        "index_hnsw_wait_s": round(waited, 3),
                        "stored": report.n_total,
                        "store": "Milvus Lite, HNSW (default settings)",
                        "rerank": method,
                        "stage1_candidates": top_k
                        if method == "none"
                        else max(
                            top_k,
                            inspect.signature(search_records).parameters["candidates"].default,
                        ),
                    },
                )
            )
        return timings
    finally:
        store.close()
        embedder.close()


def growth_exponent(sizes: Sequence[int], values: Sequence[float | None]) -> float | None:
    """Slope of log(value) against log(size) (least squares); None with fewer than 2 sizes."""
    pairs = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
    if len(pairs) < 2:
        return None
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def run_scaling(
    records: Sequence[SequenceRecord],
    sizes: Sequence[int],
    *,
    models: Sequence[str],
    peers: Sequence[str] = ("blastn", "mmseqs"),
    n_queries: int = 20,
    slow_queries: int = 5,
    top_k: int = 100,
    evalue: float = 1e-3,
    threads: int = 1,
    workdir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, object]:
    """Time every tool at every size; returns rows, exponents and ratios to BLASTn."""
    sizes = sorted(sizes)
    database, queries = nested_databases(records, sizes[-1], n_queries=n_queries, seed=seed)
    n_real = min(len(records), sizes[-1])
    rows: list[dict[str, object]] = []
    skipped: dict[str, str] = {}
    for size in sizes:
        subset = database[:size]
        with tempfile.TemporaryDirectory(prefix=f"bench-scale-{size}-", dir=workdir) as folder:
            work = Path(folder)
            write_numbered_fasta(subset, work / "db.fa")
            for peer in peers:
                runner = PEER_TIMERS[peer]
                if shutil.which(runner.program) is None:
                    skipped[peer] = f"{runner.program} not found on PATH"
                    continue
                log.info("scaling: %s at %d", peer, size)
                try:
                    timed = queries[:slow_queries] if peer in SLOW_PEERS else queries
                    rows.append(
                        runner(
                            work / "db.fa",
                            timed,
                            work,
                            size,
                            top_k=top_k,
                            evalue=evalue,
                            threads=threads,
                        ).as_dict()
                    )
                except ToolError as error:
                    skipped[f"{peer} at {size:,}"] = str(error)[:300]
                    log.error("%s at %d failed: %s", peer, size, error)
            for model in models:
                if model in skipped:
                    continue
                log.info("scaling: %s at %d", model, size)
                try:
                    timings = time_ours(
                        model, subset, queries, work, size, top_k=top_k, threads=threads
                    )
                except (RinalmoSearchError, OSError, ImportError) as error:
                    skipped[model] = str(error).splitlines()[0]
                    continue
                rows.extend(t.as_dict() for t in timings)
    tools = list(dict.fromkeys(str(r["tool"]) for r in rows))
    blast = {r["size"]: r["p50"] for r in rows if r["tool"] == "blastn"}
    for row in rows:
        reference = blast.get(row["size"])
        row["ratio_to_blastn_p50"] = (row["p50"] / reference) if reference and row["p50"] else None
    exponents = {}
    for tool in tools:
        mine = [r for r in rows if r["tool"] == tool]
        exponents[tool] = {
            "p50": growth_exponent([r["size"] for r in mine], [r["p50"] for r in mine]),
            "index": growth_exponent([r["size"] for r in mine], [r["index_seconds"] for r in mine]),
        }
    return {
        "sizes": list(sizes),
        "n_queries": len(queries),
        "top_k": top_k,
        "evalue": evalue,
        "threads": threads,
        "rows": rows,
        "exponents": exponents,
        "skipped": skipped,
        "database": (
            f"nested: {n_real} real Rfam seed sequences in random order"
            + (
                f", then {sizes[-1] - n_real} mutated copies of them (substitution rate "
                "0.15, indel rate 0.015 each)"
                if sizes[-1] > n_real
                else ""
            )
            + "; queries are real sequences contained in every size"
        ),
    }
