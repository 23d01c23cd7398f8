"""``rinalmo-search evaluate``: retrieval quality on held-out families, against the peers."""

from __future__ import annotations

import argparse
import logging
import sys

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import ConfigError
from rinalmo_search.rerank import RERANK_METHODS

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # the default model (+ Smith-Waterman re-ranking) against BLASTn, nhmmer and MMseqs2
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out split
  rinalmo-search evaluate --split split --out-md report.md --out-json report.json

  # a head trained on a frozen RiNALMo backbone, reusing the features its training cached
  rinalmo-search evaluate --split split --model compact-kmer,runs/head/model.pt \\
      --feature-cache split/features

  # two models, with and without stage 2, no peers, 10 queries per family (quick)
  rinalmo-search evaluate --split split --model compact-kmer,kmer --rerank sw,none \\
      --peers none --max-queries-per-family 10

protocol: queries are the sequences of test families with at least 4 members; the database is
every sequence of the split (train + validation + test families). A hit of the query's family is
a true positive, one of the same clan but another family is ignored, anything else is a false
positive. Metrics are averaged per family, then over families (also by family size: <20, 20-99,
>=100 members): average precision (AP), precision/recall/F1 at a score threshold chosen on the
validation families (peers: their hits at E <= --evalue), recall at R (family size - 1, at most
100), sensitivity up to the first false positive, precision at 10. Peers are run as a user runs
them for a ranked list: up to --top-k hits per query at E <= 10, both strands, ranked by bit
score. Our stage 1 is an exact cosine search (numpy) over the whole database, so the numbers
measure the model and the re-ranker, not the HNSW index.
"""


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip() and part.strip() != "none"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="retrieval quality on held-out test families, side by side with BLASTn/nhmmer/MMseqs2",
        description="Search every test-family sequence of a prepared split against all of the "
        "split's sequences with our model(s) and the peer tools, and report family-macro "
        "retrieval metrics as a markdown table and JSON.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--split", required=True, metavar="DIR",
                        help="split folder written by 'rinalmo-search data prepare'")
    parser.add_argument("--model", default="", metavar="NAMES",
                        help="comma-separated model names or model files (default: the "
                        "default model)")
    parser.add_argument("--rerank", default="sw", metavar="METHODS",
                        help=f"comma-separated stage-2 methods, each evaluated "
                        f"({', '.join(RERANK_METHODS)})")
    parser.add_argument("--peers", default="blastn,nhmmer,mmseqs", metavar="TOOLS",
                        help="comma-separated peer tools (blastn, nhmmer, mmseqs, "
                        "cmsearch-1seq: a CM of each query alone, seconds per query), or 'none'")
    parser.add_argument("--top-k", type=int, default=1000, metavar="K",
                        help="stage-1 shortlist per query (and peers' maximum targets)")
    parser.add_argument("--evalue", type=float, default=1e-3,
                        help="peers' E-value cut-off for precision/recall/F1 (their ranking "
                        "metrics use every hit down to E 10, by bit score)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="threads for the peers and the re-ranker")
    parser.add_argument("--max-queries-per-family", type=int, metavar="N",
                        help="deterministic sample of at most N test queries per family")
    parser.add_argument("--max-validation-queries-per-family", type=int, default=10,
                        metavar="N", help="validation queries per family used for thresholds")
    parser.add_argument("--feature-cache", metavar="DIR",
                        help="the trainer's feature cache (default of 'train': SPLIT/features): "
                        "heads trained on a frozen RiNALMo backbone read their backbone "
                        "features from it instead of running the backbone again")
    parser.add_argument("--feedback", default="on", metavar="SETTINGS",
                        help="comma-separated pseudo-relevance feedback settings, each evaluated "
                        "with each method: off, on (search's default) or "
                        "THRESHOLD:DEPTH:SEEDS:SEED_DEPTH[:MAX_CONFIDENT], e.g. off,on")
    parser.add_argument("--queries-from", choices=("test", "validation"), default="test",
                        help="families queried: 'validation' to choose parameters (never to "
                        "report: thresholds are then fixed on the same queries)")
    parser.add_argument("--out-json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--out-md", metavar="FILE", help="write the markdown table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rinalmo_search.embedder import DEFAULT_MODEL
    from rinalmo_search.evaluation.report import markdown, write_report
    from rinalmo_search.evaluation.runner import evaluate
    from rinalmo_search.evaluation.split import load_retrieval_set

    for option in ("top_k", "threads", "max_queries_per_family",
                   "max_validation_queries_per_family"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ConfigError(
                f"Invalid '--{option.replace('_', '-')}' value: {value} (expected >= 1)"
            )
    if args.evalue <= 0:
        raise ConfigError(f"Invalid '--evalue' value: {args.evalue} (expected > 0)")
    reranks = [m.strip() for m in args.rerank.split(",") if m.strip()]
    for method in reranks:
        if method not in RERANK_METHODS:
            raise ConfigError(
                f"Invalid re-ranking method: {method!r} (expected one of "
                f"{', '.join(RERANK_METHODS)})"
            )
    from rinalmo_search.feedback import Feedback

    feedbacks = [Feedback.parse(text) for text in args.feedback.split(",") if text.strip()]
    models = _names(args.model) or [DEFAULT_MODEL]
    split = load_retrieval_set(args.split)
    report = evaluate(
        split, models=models, reranks=reranks, peers=_names(args.peers), top_k=args.top_k,
        evalue=args.evalue, threads=args.threads,
        max_queries_per_family=args.max_queries_per_family,
        max_validation_queries_per_family=args.max_validation_queries_per_family,
        feature_cache=args.feature_cache, feedbacks=feedbacks or [None],
        query_split=args.queries_from,
    )
    write_report(report, json_path=args.out_json, markdown_path=args.out_md)
    sys.stdout.write(markdown(report))
    return 0
