"""``rinalmo-search search``: find homologs of query RNAs in a collection."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import ConfigError
from rinalmo_search.feedback import Feedback
from rinalmo_search.hits import DatabaseSize, Hit
from rinalmo_search.pipeline import (
    QUERY_FOLDERS_FILE,
    open_embedder,
    open_store,
    search_records,
    write_search_outputs,
)
from rinalmo_search.rerank import (
    DEFAULT_RERANK,
    RERANK_METHODS,
    RerankCalibration,
    describe_alignments,
)
from rinalmo_search.seqio import STDIO, SequenceRecord, check_output, read_fasta

from .common import (
    add_model_options,
    add_store_options,
    refuse_inside_database,
    require_positive,
    settings_from_args,
)

log = logging.getLogger(__name__)

#: Stage-1 hits re-ranked per query when --candidates is not given.
DEFAULT_CANDIDATES = 1000

EXAMPLES = f"""\
examples:
  # top 100 hits per query as a table, plus one FASTA of homologs per query
  rinalmo-search search query.fasta --db rna.db --out hits.tsv --fasta-out homologs/

  # only hits of one clan, with an estimated homology probability of at least 0.9
  rinalmo-search search query.fasta --db rna.db --out hits.tsv \\
      --filter 'clan == "CL00001"' --min-score 0.9

  # hits with an E-value of at most 1e-5 in the collection searched, as BLAST's 12 columns
  rinalmo-search search query.fasta --db rna.db --out hits.m8 --max-evalue 1e-5 \
      --outfmt blast6

  # embedding ranking only (stage 1), cosine similarity as the score
  rinalmo-search search query.fasta --db rna.db --out hits.tsv --rerank none

  # a compressed query file, the table on standard output
  rinalmo-search search queries.fa.gz --db rna.db --out - | sort -k4,4gr | head
  cat q.fa | rinalmo-search search - --db rna.db --out hits.tsv

two stages: the query's vector retrieves --candidates nearest neighbours (HNSW, cosine); with
--rerank sw each is aligned to the query (Smith-Waterman) and the two scores are merged into one
calibrated score (probability of being in the query's family), which ranks the --top-k hits.

inputs: FASTA, plain or gzip-compressed, or '-' for standard input; UTF-8 (a byte-order mark
is ignored; other bytes stop with the file and line).

statistics: every hit written is aligned to its query once more (Smith-Waterman with
traceback, on the --top-k hits only) for its coordinates and its E-value in the collection
searched (Karlin-Altschul with the model's fitted constants; the collection's size in
sequences and nt is named in the table's '#' block: exact up to 1,000 sequences, else the
count times the mean length of 1,000 stored ones). 'score' stays the calibrated probability.

outputs (checked before the search starts; the query file is never overwritten):
  HITS.tsv   tab-separated ('-': standard output): a '#' block documenting each column and
             the database size, then the header: query_id rank target_id score family clan
             target_length embedding_score alignment_score evalue query_start query_end
             target_start target_end
             --outfmt blast6: BLAST's 12 columns instead, no header: qseqid sseqid pident
             length mismatch gapopen qstart qend sstart send evalue bitscore (our +1/-1,
             gaps 3/1 alignment and fitted constants, not BLASTn's scores)
  DIR/<folder>/retrieved_homologs.fasta   the query first, then the hits in rank order
  DIR/{QUERY_FOLDERS_FILE}   query_id -> folder, one row per query
             a folder is the query id with characters outside [A-Za-z0-9._-] and a leading
             '.' made '_', cut to 100 characters; when two ids would share a folder (q/1 and
             q_1, or Q1 and q1) or the name was cut, '_' and 8 hex digits of the id's SHA-1
             are appended, so no two queries share a folder and none lands outside DIR

warnings: an empty collection, queries without hits, and queries too short for the model
(a zero vector: their hits are arbitrary) are reported on standard error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find homologs of query sequences in a collection",
        description="Embed each query, retrieve its nearest neighbours from the collection "
        "(cosine similarity, HNSW), and write a hits table and per-query homolog FASTA files.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("query", metavar="QUERY_FASTA", help="FASTA file of query sequences")
    parser.add_argument(
        "--out", required=True, metavar="HITS.tsv", help="hits table to write ('-': stdout)"
    )
    parser.add_argument(
        "--fasta-out",
        metavar="DIR",
        help=f"write DIR/<folder>/retrieved_homologs.fasta per query and DIR/{QUERY_FOLDERS_FILE}",
    )
    parser.add_argument("--top-k", type=int, default=100, metavar="K", help="hits per query")
    parser.add_argument("--min-score", type=float, metavar="S", help="drop hits scoring below S")
    parser.add_argument("--max-evalue", type=float, metavar="E",
                        help="drop hits whose E-value in the collection searched is above E")
    parser.add_argument("--outfmt", choices=("tsv", "blast6"), default="tsv",
                        help="hits table: ours (tsv, documented columns) or BLAST's 12 "
                        "tabular columns (blast6)")
    parser.add_argument(
        "--filter",
        default="",
        metavar="EXPR",
        help="Milvus filter on stored fields: family, clan, length, source",
    )
    parser.add_argument(
        "--rerank",
        default=DEFAULT_RERANK,
        choices=RERANK_METHODS,
        help="stage 2: re-score the shortlist by alignment (sw: Smith-Waterman) or keep the "
        "embedding ranking (none)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        metavar="N",
        help=f"with --rerank, stage-1 hits re-scored per query (default: {DEFAULT_CANDIDATES}; "
        "at least --top-k are)",
    )
    parser.add_argument(
        "--first-candidates",
        type=int,
        metavar="N",
        help="adaptive shortlist: re-rank N candidates first and fetch --candidates only for "
        "queries whose first shortlist still ends in probable homologs (faster on large "
        "collections; on the test families 200 cost 0.027 AP)",
    )
    parser.add_argument(
        "--feedback",
        default="on",
        metavar="SETTING",
        help="with --rerank, search again from each query's confident hits (p >= 0.9) and "
        "re-rank the widened shortlist: on, off or THRESHOLD:DEPTH:SEEDS:SEED_DEPTH"
        "[:MAX_CONFIDENT] (on = 0.9:500:10:200:20; validation families: AP 0.870 -> 0.923)",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="threads for re-ranking")
    add_store_options(parser)
    add_model_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    require_positive(args, "top_k", "candidates", "first_candidates")
    if args.max_evalue is not None and not args.max_evalue > 0:
        raise ConfigError(f"Invalid --max-evalue value {args.max_evalue}: expected > 0")
    settings = settings_from_args(args)
    feedback = Feedback.parse(args.feedback)
    _check_outputs(args)
    refuse_inside_database(settings, {"--out": args.out, "--fasta-out": args.fasta_out})
    candidates = _candidates(args)
    queries = read_fasta(args.query)
    with open_embedder(settings) as embedder, open_store(settings, create=False) as store:
        store.check_filter(args.filter)
        results = search_records(
            queries,
            store,
            embedder,
            top_k=args.top_k,
            min_score=args.min_score,
            filter=args.filter,
            rerank=args.rerank,
            candidates=candidates,
            first_candidates=args.first_candidates,
            threads=settings.threads,
            feedback=feedback,
        )
        database = DatabaseSize(*store.residues())
        calibration = RerankCalibration.for_model(embedder)
        for query, hits in zip(queries, results, strict=True):
            describe_alignments(query, hits, database, calibration)
        if args.max_evalue is not None:
            results = [[h for h in hits if h.evalue is not None and h.evalue <= args.max_evalue]
                       for hits in results]
        empty = not any(results) and database.sequences == 0
        if empty:
            log.warning(
                "Collection %r in %s holds no sequences, so no query has hits; add some with "
                "'rinalmo-search index FASTA --db %s'",
                store.alias,
                store.uri,
                store.uri,
            )
        model = embedder.info.tag
    if not empty:
        _warn_about_results(queries, results, model, args)
    write_search_outputs(queries, results, args.out, args.fasta_out, database=database,
                         outfmt=args.outfmt)
    n_hits = sum(len(hits) for hits in results)
    where = "standard output" if args.out == STDIO else args.out
    log.info("%d queries, %d hits → %s", len(queries), n_hits, where)
    if args.fasta_out is not None:
        log.info(
            "homolog FASTA files in %s (folders per query: %s)",
            args.fasta_out,
            Path(args.fasta_out) / QUERY_FOLDERS_FILE,
        )
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable outputs and outputs that are the input, before any work."""
    check_output(args.out, option="--out", inputs=[args.query])
    if args.fasta_out is not None:
        check_output(args.fasta_out, option="--fasta-out", folder=True, inputs=[args.query])
        if args.out != STDIO and Path(args.out).absolute() == Path(args.fasta_out).absolute():
            raise ConfigError(f"--out and --fasta-out are the same path ({args.out})")


def _candidates(args: argparse.Namespace) -> int:
    """The stage-1 shortlist per query, with a warning where --candidates has no effect."""
    if args.candidates is None:
        return DEFAULT_CANDIDATES
    if args.rerank == "none":
        log.warning("--candidates is ignored with --rerank none (stage 1 returns --top-k hits)")
    elif args.candidates < args.top_k:
        log.warning(
            "--candidates %d is below --top-k %d: %d candidates are re-ranked per query",
            args.candidates,
            args.top_k,
            args.top_k,
        )
    return int(args.candidates)


def _warn_about_results(
    queries: Sequence[SequenceRecord],
    results: Sequence[list[Hit]],
    model: str,
    args: argparse.Namespace,
) -> None:
    """Say which queries have no hits, or hits that mean nothing (a zero query vector)."""
    without = [query.id for query, hits in zip(queries, results, strict=True) if not hits]
    if without:
        narrowed = " (narrowed by --filter/--min-score)" if args.filter or args.min_score else ""
        log.warning(
            "%d of %d queries have no hits%s: %s",
            len(without),
            len(queries),
            narrowed,
            ", ".join(repr(i) for i in without[:5]) + (", ..." if len(without) > 5 else ""),
        )
    for query, hits in zip(queries, results, strict=True):
        if hits and all(hit.embedding_score == 0.0 for hit in hits):
            log.warning(
                "Query %r (%d nt) is too short for model %s: its vector is zero, so its hits "
                "are arbitrary",
                query.id,
                len(query.sequence),
                model,
            )
