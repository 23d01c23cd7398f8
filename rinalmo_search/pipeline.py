"""The search pipeline: FASTA → vectors → Milvus → hits (→ re-ranking) → TSV and FASTA.

Everything here talks to the :class:`~rinalmo_search.embedder.Embedder` and
:class:`~rinalmo_search.milvus.VectorStore` interfaces only, so the local model and Triton, a
Milvus Lite file and a Milvus cluster are interchangeable.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from .config import Settings
from .embedder import DEFAULT_MODEL, Embedder, load_embedder
from .errors import ConfigError
from .feedback import Feedback
from .hits import DatabaseSize, Hit, write_blast6, write_hits_tsv
from .milvus import VectorStore, check_limits
from .milvus.store import HIT_FIELDS
from .rerank import RerankCalibration, two_stage
from .seqio import SequenceRecord, atomic_write, write_fasta

log = logging.getLogger(__name__)

T = TypeVar("T")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
#: Longest per-query folder name (ASCII characters; file systems allow 255 bytes).
MAX_FILENAME = 100
#: The table ``query_id  folder`` written into every ``--fasta-out`` folder.
QUERY_FOLDERS_FILE = "query_folders.tsv"


def open_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for: a local model, or the same model behind Triton."""
    if settings.embedder == "triton":
        from .embedder.triton.client import TritonEmbedder

        return TritonEmbedder(settings.triton_url, model=settings.model or "rinalmo_search")
    return load_embedder(settings.model or DEFAULT_MODEL)


def open_store(settings: Settings, *, create: bool = True) -> VectorStore:
    """The vector store at ``settings.db`` (a Milvus Lite file or a server URI).

    Arguments:
        settings: where the store is and how to reach it.
        create: whether a missing Milvus Lite database may be created (false for reads).
    """
    if not settings.db:
        raise ConfigError("No database given (use --db PATH_OR_URI or RINALMO_SEARCH_DB)")
    return VectorStore(
        settings.db, collection=settings.collection, token=settings.milvus_token, create=create
    )


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class IndexReport:
    """What an ``index`` run did.

    Attributes:
        n_input: records read.
        n_new: records not yet in the collection.
        n_total: records in the collection afterwards.
        seconds: wall-clock time.
        model: ``name@version`` of the model that made the vectors.
    """

    n_input: int
    n_new: int
    n_total: int
    seconds: float
    model: str

    def summary(self) -> str:
        """One human-readable paragraph."""
        rate = self.n_new / self.seconds if self.seconds > 0 else 0.0
        return (
            f"read {self.n_input} sequences, added {self.n_new} new "
            f"({self.n_input - self.n_new} already present) in {self.seconds:.1f} s "
            f"({rate:.0f} seq/s); collection now holds {self.n_total} sequences "
            f"(model {self.model})"
        )


def index_records(
    records: Sequence[SequenceRecord],
    store: VectorStore,
    embedder: Embedder,
    *,
    batch_size: int = 256,
    upsert: bool = False,
    new_version: bool = False,
    drop_previous: bool = False,
    progress: bool = True,
) -> IndexReport:
    """Embed the records that are not stored yet and insert them, batch by batch.

    Every batch is written before the next is embedded, so an interrupted run loses at most one
    batch and a rerun embeds only what is missing.

    With ``new_version``, the records go into a new version of the collection (e.g. built by a
    new model) while searches keep using the current one; the alias is swapped to it at the end
    (and the old version dropped with ``drop_previous``).

    Raises:
        InputError: a record over the store's limits (:func:`~.milvus.check_limits`), found
            before anything is created or written.
    """
    started = time.perf_counter()
    check_limits(records)
    if new_version:
        store.create_version(embedder.info)
    else:
        store.ensure_collection(embedder.info)
    todo = store.new_records(records, upsert=upsert)
    with tqdm(
        total=len(todo), unit="seq", desc="indexing", disable=not progress or not todo
    ) as bar:
        for batch in batches(todo, batch_size):
            vectors = embedder.embed([record.sequence for record in batch])
            store.insert(batch, vectors, upsert=upsert, checked=True)
            bar.update(len(batch))
    if todo:
        log.info("flushing %d new vectors; Milvus builds the HNSW index now", len(todo))
    store.flush()
    if new_version:
        previous = store.promote(drop_previous=drop_previous)
        log.info("the collection now serves the new version (previous: %s)", previous or "none")
    return IndexReport(
        n_input=len(records),
        n_new=len(todo),
        n_total=store.count(),
        seconds=time.perf_counter() - started,
        model=embedder.info.tag,
    )


def search_records(
    queries: Sequence[SequenceRecord],
    store: VectorStore,
    embedder: Embedder,
    *,
    top_k: int = 100,
    min_score: float | None = None,
    filter: str = "",
    rerank: str = "none",
    candidates: int = 1000,
    first_candidates: int | None = None,
    threads: int = 1,
    batch_size: int = 256,
    feedback: Feedback | None = None,
) -> list[list[Hit]]:
    """Top hits of each query, best first.

    Arguments:
        queries: query records.
        store: an open vector store whose collection was built by ``embedder``'s model.
        embedder: the model that embeds the queries.
        top_k: hits kept per query.
        min_score: drop hits scoring below this (after re-ranking, on the final score).
        filter: Milvus boolean expression on stored fields, e.g. ``clan == "CL00001"``.
        rerank: stage-2 method (``"none"`` keeps the embedding ranking); see
            :mod:`rinalmo_search.rerank`.
        candidates: with re-ranking, stage 1 retrieves ``max(top_k, candidates)`` hits per
            query, stage 2 re-scores them all and keeps the best ``top_k``.
        first_candidates: an adaptive shortlist instead: stage 1 first retrieves
            ``max(top_k, first_candidates)`` hits and goes to ``candidates`` only for queries
            whose shortlist still ends in probable homologs
            (:func:`~rinalmo_search.rerank.two_stage`). Off by default: on the test families it
            cost 0.027 AP at 200 (0.841 vs 0.868).
        threads: threads for the re-ranker.
        batch_size: queries embedded and searched per round.
        feedback: with re-ranking, widen each shortlist by searching again from its confident
            hits, embedded by ``embedder`` (:mod:`rinalmo_search.feedback`); ``None``: off.

    Raises:
        ConfigError: ``top_k`` is not positive or the re-ranking method is unknown.
        StoreError: the collection is missing or was built by another model.
    """
    if top_k < 1:
        raise ConfigError(f"Invalid 'top_k' value: {top_k} (expected a positive integer)")
    store.check_model(embedder.info)

    def fetch(vectors: np.ndarray, k: int) -> list[list[Hit]]:
        # other ids of a candidate's sequence are added to the final hits only (add_copies)
        return store.search(vectors, top_k=k, filter=filter, fields=HIT_FIELDS, copies=False)

    calibration = RerankCalibration.for_model(embedder)

    results: list[list[Hit]] = []
    started = time.perf_counter()
    for batch in batches(queries, batch_size):
        vectors = embedder.embed([query.sequence for query in batch])
        found = two_stage(
            batch,
            vectors,
            fetch,
            top_k=top_k,
            candidates=candidates,
            first_candidates=max(top_k, first_candidates or candidates),
            method=rerank,
            threads=threads,
            calibration=calibration,
            feedback=feedback,
            embed=embedder.embed,
        )
        results.extend(store.add_copies(found, top_k=top_k, filter=filter))
    log.debug("search (%s): %.3f s", rerank, time.perf_counter() - started)
    if min_score is not None:
        results = [[hit for hit in hits if hit.score >= min_score] for hits in results]
    return results


def safe_filename(identifier: str) -> str:
    """A file name made from ``identifier`` that stays inside its folder.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``, and so does a leading ``.`` (never
    ``.``, ``..`` or a hidden name); a name longer than :data:`MAX_FILENAME` characters is cut
    and ends in ``_`` and 8 hex digits of the SHA-1 of the whole identifier. Distinct ids can
    still give one name (``q/1``, ``q_1``): :func:`query_folder_names` resolves that.
    """
    name = _UNSAFE_FILENAME.sub("_", identifier)
    if name.startswith("."):
        name = "_" + name[1:]
    if len(name) > MAX_FILENAME:
        name = f"{name[: MAX_FILENAME - 9]}_{_short_hash(identifier)}"
    return name or "_"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def query_folder_names(ids: Sequence[str]) -> dict[str, str]:
    """One distinct folder name per id, safe on any file system (see :func:`safe_filename`).

    An id that is a safe name already keeps it; another id whose safe name is taken (also when
    only the case differs, for case-insensitive file systems) gets ``_`` and a hash of the id
    appended. :data:`QUERY_FOLDERS_FILE` is never a folder name.

    Returns:
        id → folder name, in the order of ``ids``.
    """
    taken = {QUERY_FOLDERS_FILE.casefold()}
    names: dict[str, str] = {}
    unique = list(dict.fromkeys(ids))
    for identifier in sorted(unique, key=lambda i: safe_filename(i) != i):
        base = name = safe_filename(identifier)
        attempt = 0
        while name.casefold() in taken:
            attempt += 1
            suffix = _short_hash(identifier if attempt == 1 else f"{identifier}\0{attempt}")
            name = f"{base[: MAX_FILENAME - len(suffix) - 1]}_{suffix}"
        taken.add(name.casefold())
        names[identifier] = name
    return {identifier: names[identifier] for identifier in unique}


def homolog_records(query: SequenceRecord, hits: Sequence[Hit]) -> list[SequenceRecord]:
    """The query, then each hit in rank order, as records for ``retrieved_homologs.fasta``.

    A hit that is the query itself (same id) is not repeated, so the file has unique ids.
    """
    records = [query]
    for rank, hit in enumerate(hits, start=1):
        if hit.target_id == query.id:
            continue
        description = f"rank={rank} score={hit.score:.4f} family={hit.family or 'NA'} " + (
            f"clan={hit.clan or 'NA'}"
        )
        records.append(
            SequenceRecord(id=hit.target_id, sequence=hit.sequence, description=description)
        )
    return records


def write_search_outputs(
    queries: Sequence[SequenceRecord],
    results: Sequence[list[Hit]],
    hits_tsv: str | Path,
    fasta_dir: str | Path | None = None,
    *,
    database: DatabaseSize | None = None,
    outfmt: str = "tsv",
) -> list[Path]:
    """Write the hits table and, with ``fasta_dir``, one ``retrieved_homologs.fasta`` per query.

    The FASTA files go to ``fasta_dir/<folder>/retrieved_homologs.fasta``, one folder per query
    named by :func:`query_folder_names`, and ``fasta_dir/query_folders.tsv`` (``query_id``,
    ``folder``) says which folder holds which query.

    Arguments:
        queries: the query records, in input order.
        results: each query's hits, best first.
        hits_tsv: the hits table (``-``: standard output).
        fasta_dir: the folder of per-query FASTA files, or ``None``.
        database: the database the hits' E-values are for (named in the table's header).
        outfmt: ``"tsv"`` (the hits table) or ``"blast6"`` (BLAST's 12 columns,
            :func:`~rinalmo_search.hits.write_blast6`).

    Returns:
        Paths of the FASTA files written, in query order.
    """
    pairs = ((query.id, hits) for query, hits in zip(queries, results, strict=True))
    if outfmt == "blast6":
        write_blast6(pairs, hits_tsv)
    else:
        write_hits_tsv(pairs, hits_tsv, database=database)
    written: list[Path] = []
    if fasta_dir is not None:
        folders = query_folder_names([query.id for query in queries])
        for query, hits in zip(queries, results, strict=True):
            path = Path(fasta_dir) / folders[query.id] / "retrieved_homologs.fasta"
            write_fasta(homolog_records(query, hits), path)
            written.append(path)
        with atomic_write(Path(fasta_dir) / QUERY_FOLDERS_FILE) as handle:
            handle.write("query_id\tfolder\n")
            handle.writelines(f"{query_id}\t{name}\n" for query_id, name in folders.items())
    return written
