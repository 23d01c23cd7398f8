"""``rinalmo-search evaluate-msa``: MSA quality against Rfam seed alignments, ours vs BLASTn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..evaluation.msa_benchmark import (
    DEFAULT_FAMILIES,
    evaluate_msa,
    summary_table,
    write_results,
)
from ..msa.mafft import ALIGNERS
from ..rerank import DEFAULT_RERANK, RERANK_METHODS

log = logging.getLogger(__name__)

NAME = "evaluate-msa"
EXAMPLES = f"""\
examples:
  # the default six families, one query each, k-mer model, 2 threads (a few minutes)
  rinalmo-search evaluate-msa --rfam ../shared/data/rfam --threads 2 --out msa_scores.tsv

  # chosen families, three queries each, with a trained model file
  rinalmo-search evaluate-msa --families RF00005,RF00031 --queries-per-family 3 \\
      --model models/head.pt

what it does: for each family, seed members are queries; our search (Milvus) and BLASTn
search the same database (the families' seed sequences plus --background others); the seed
members among each tool's top-k are aligned (MAFFT -> RNAalifold -> cmbuild -> cmalign, and
MAFFT alone) and scored against the Rfam seed alignment: SPS, column score, base-pair F1.
The "mean" line averages each tool over the queries it scored; the "paired" line only over
the queries where both tools retrieved another seed member.
Default families: {",".join(DEFAULT_FAMILIES)}.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-msa`` sub-command."""
    from ..cli import HelpFormatter

    parser = subparsers.add_parser(
        NAME,
        help="score MSAs of retrieved homologs against Rfam seed alignments (ours vs BLASTn)",
        description="Sum-of-pairs scores of MSAs built from our search's and BLASTn's top hits, "
        "against Rfam seed alignments, with MAFFT alone as a baseline.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--rfam", type=Path, default=Path("../shared/data/rfam"),
                        help="folder with sequences.fasta and seeds/RFxxxxx.sto")
    parser.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                        help="comma-separated Rfam accessions")
    parser.add_argument("--queries-per-family", type=int, default=1, metavar="N",
                        help="seed members used as queries per family")
    parser.add_argument("--background", type=int, default=2000, metavar="N",
                        help="sequences of other families added to the searched database")
    parser.add_argument("--top-k", type=int, default=100, help="hits kept per query and tool")
    parser.add_argument("--model", default="", help="embedder name or model file "
                        "(default: the project's default model)")
    parser.add_argument("--rerank", choices=RERANK_METHODS, default=DEFAULT_RERANK,
                        help="stage 2 of our search, as in 'rinalmo-search search'")
    parser.add_argument("--aligner", choices=ALIGNERS, default="auto", help="MAFFT draft strategy")
    parser.add_argument("--threads", "-t", type=int, default=1,
                        help="threads for BLASTn, MAFFT and cmalign")
    parser.add_argument("--seed", type=int, default=1, help="random seed (background, queries)")
    parser.add_argument("--out", "-o", type=Path, default=None, metavar="TSV",
                        help="write per-query scores here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate-msa``."""
    from ..errors import ConfigError
    from ..tools import sigterm_raises

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    if not families:
        raise ConfigError(f"Invalid --families value: {args.families!r} (expected RF accessions)")
    for name, value in (("queries-per-family", args.queries_per_family), ("top-k", args.top_k),
                        ("threads", args.threads)):
        if value < 1:
            raise ConfigError(f"Invalid '{name}' value: {value} (expected a positive integer)")
    if args.background < 0:
        raise ConfigError(f"Invalid 'background' value: {args.background} (expected >= 0)")
    with sigterm_raises():  # SIGTERM, like Ctrl-C, stops the programs and removes temp folders
        results = evaluate_msa(
            args.rfam, families=families, queries_per_family=args.queries_per_family,
            background=args.background, top_k=args.top_k, model=args.model, rerank=args.rerank,
            threads=args.threads, aligner=args.aligner, seed=args.seed,
        )
    if args.out is not None:
        write_results(results, args.out)
        log.info("per-query scores written to %s", args.out)
    print(summary_table(results))
    return 0
