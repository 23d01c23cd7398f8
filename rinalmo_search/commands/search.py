"""``rinalmo-search search``: find homologs of query RNAs in a collection."""

from __future__ import annotations

import argparse
import logging

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.pipeline import open_embedder, open_store, search_records, write_search_outputs
from rinalmo_search.rerank import DEFAULT_RERANK, RERANK_METHODS
from rinalmo_search.seqio import read_fasta

from .common import add_model_options, add_store_options, settings_from_args

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # top 100 hits per query as a table, plus one FASTA of homologs per query
  rinalmo-search search query.fasta --db rna.db --out hits.tsv --fasta-out homologs/

  # only hits of one clan, with an estimated homology probability of at least 0.9
  rinalmo-search search query.fasta --db rna.db --out hits.tsv \\
      --filter 'clan == "CL00001"' --min-score 0.9

  # embedding ranking only (stage 1), cosine similarity as the score
  rinalmo-search search query.fasta --db rna.db --out hits.tsv --rerank none

two stages: the query's vector retrieves --candidates nearest neighbours (HNSW, cosine); with
--rerank sw each is aligned to the query (Smith-Waterman) and the two scores are merged into one
calibrated score (probability of being in the query's family), which ranks the --top-k hits.

outputs:
  HITS.tsv   tab-separated, header first: query_id rank target_id score family clan
             target_length embedding_score alignment_score
  DIR/<query_id>/retrieved_homologs.fasta   the query first, then the hits in rank order
             (characters of the id outside [A-Za-z0-9._-] become '_' in the folder name)
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
    parser.add_argument("--out", required=True, metavar="HITS.tsv", help="hits table to write")
    parser.add_argument(
        "--fasta-out", metavar="DIR", help="write DIR/<query>/retrieved_homologs.fasta"
    )
    parser.add_argument("--top-k", type=int, default=100, metavar="K", help="hits per query")
    parser.add_argument("--min-score", type=float, metavar="S", help="drop hits scoring below S")
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
        default=1000,
        metavar="N",
        help="with --rerank, stage-1 hits re-scored per query",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="threads for re-ranking")
    add_store_options(parser)
    add_model_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    queries = read_fasta(args.query)
    with open_embedder(settings) as embedder, open_store(settings) as store:
        results = search_records(
            queries,
            store,
            embedder,
            top_k=args.top_k,
            min_score=args.min_score,
            filter=args.filter,
            rerank=args.rerank,
            threads=settings.threads,
        )
    fasta_files = write_search_outputs(queries, results, args.out, args.fasta_out)
    n_hits = sum(len(hits) for hits in results)
    log.info("%d queries, %d hits → %s", len(queries), n_hits, args.out)
    if fasta_files:
        log.info("homolog FASTA files in %s", args.fasta_out)
    return 0
