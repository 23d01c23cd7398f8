"""``rinalmo-search calibrate``: fit the re-ranker's constants for a model, into its file."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import ConfigError

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # fit lambda, ln K and the merge weights of a model on a prepared split; write them into it
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out split --mmseqs-k 0
  rinalmo-search calibrate --split split --model runs/compact-kmer/model.npz

  # only the merge weights (keep the model's lambda and ln K), print without writing
  rinalmo-search calibrate --split split --model compact-kmer --keep-constants --dry-run

what is fitted: lambda and ln K of the Smith-Waterman scores (Gumbel maximum likelihood on
unrelated pairs of training families of different clans), then the merged score
sigmoid(a * -log10(E) + b * z(cosine) + c) (scikit-learn logistic regression on the shortlists
of validation-family queries: same family 1, another clan 0, same clan other family left out).
Test families are never used. The result goes into the model file's metadata ("rerank"); a
model file without it uses the constants of rinalmo_search.rerank.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``calibrate``."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit the re-ranker's E-value constants and merge weights for a model",
        description="Fit stage 2 of the search for one model on a split written by "
        "'rinalmo-search data prepare', and store the result in the model file.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--split", required=True, metavar="DIR",
                        help="split folder written by 'rinalmo-search data prepare'")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a model file, or a registered name that has one (compact-kmer)")
    parser.add_argument("--queries-per-family", type=int, default=6, metavar="N",
                        help="validation queries per family for the merge fit")
    parser.add_argument("--top-k", type=int, default=1000, metavar="K",
                        help="stage-1 shortlist per query (as the search's --candidates)")
    parser.add_argument("--null-queries", type=int, default=300, metavar="N",
                        help="training sequences whose unrelated pairs the Gumbel fit uses")
    parser.add_argument("--null-targets", type=int, default=100, metavar="N",
                        help="unrelated targets per such sequence")
    parser.add_argument("--seed", type=int, default=0, help="seed of the unrelated pairs")
    parser.add_argument("--keep-constants", action="store_true",
                        help="keep the model's lambda and ln K; fit only the merge weights")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the fit without writing it into the model file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``calibrate``."""
    from rinalmo_search.embedder import load_embedder
    from rinalmo_search.embedder.compact import is_compact_file, update_compact_metadata
    from rinalmo_search.evaluation.calibration import calibrate
    from rinalmo_search.evaluation.provenance import model_metadata, model_path
    from rinalmo_search.evaluation.split import load_retrieval_set
    from rinalmo_search.rerank import RerankCalibration

    for option in ("queries_per_family", "top_k", "null_queries", "null_targets"):
        value = getattr(args, option)
        if value < 1:
            raise ConfigError(
                f"Invalid '--{option.replace('_', '-')}' value: {value} (expected >= 1)"
            )
    path = model_path(args.model)
    if path is None and not args.dry_run:
        raise ConfigError(f"Model {args.model!r} has no model file to write into (expected a "
                          "model file or a registered name backed by one; or use --dry-run)")
    split = load_retrieval_set(args.split)
    base = RerankCalibration.from_metadata(model_metadata(args.model))
    result = calibrate(split, load_embedder(args.model), queries_per_family=args.queries_per_family,
                       top_k=args.top_k, null_queries=args.null_queries,
                       null_targets=args.null_targets, seed=args.seed,
                       fit_constants=not args.keep_constants, base=base)
    section = {**result.metadata(), "split": split.source}
    sys.stdout.write(json.dumps(section, indent=1) + "\n")
    if not args.dry_run:
        assert path is not None
        if is_compact_file(path):
            update_compact_metadata(path, {"rerank": section})
        else:
            from rinalmo_search.embedder.model_file import update_model_metadata

            update_model_metadata(path, {"rerank": section})
        log.info("calibration written into %s", path)
    return 0
