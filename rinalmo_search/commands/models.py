"""``rinalmo-search models``: the model names ``--model`` accepts."""

from __future__ import annotations

import argparse

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.embedder import DEFAULT_MODEL, MODELS

EXAMPLES = """\
examples:
  rinalmo-search models
  rinalmo-search search q.fasta --db rna.db --out hits.tsv --model kmer
  rinalmo-search search q.fasta --db rna.db --out hits.tsv --model trained/model.pt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model names --model accepts",
        description="List the registered models (the first is the default). --model also "
        "accepts the path of a model file written by 'rinalmo-search train'.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    width = max(len(name) for name in MODELS)
    for name, factory in MODELS.items():
        summary = (factory.__doc__ or "").strip().splitlines()
        marker = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:<{width}}  {summary[0] if summary else ''}{marker}")
    return 0
