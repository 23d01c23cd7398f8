"""``rinalmo-search demo``: the whole path on real Rfam families installed with Infernal."""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.config import load_settings
from rinalmo_search.errors import InputError
from rinalmo_search.msa.stockholm import read_stockholm_records
from rinalmo_search.pipeline import (
    index_records,
    open_embedder,
    open_store,
    search_records,
    write_search_outputs,
)
from rinalmo_search.rerank import DEFAULT_RERANK
from rinalmo_search.seqio import SequenceRecord, write_fasta

from .common import require_positive

log = logging.getLogger(__name__)

#: Rfam seed alignments of tRNA, Vault, snR75 and Plant_SRP shipped by Debian's infernal package.
DEMO_ALIGNMENTS = (
    Path("/usr/share/doc/infernal/examples/testsuite/4.sto"),
    Path("/usr/share/infernal/testsuite/4.sto"),
)

EXAMPLES = """\
examples:
  rinalmo-search demo                      # outputs under ./rinalmo-search-demo/
  rinalmo-search demo --out /tmp/demo --top-k 30

what it does:
  1. reads four real Rfam seed families (tRNA, Vault, snR75, Plant_SRP) that Infernal installs,
  2. holds out the first sequence of each family as a query and indexes the rest into a
     Milvus Lite file (a rerun finds them all present and adds nothing),
  3. searches the four queries, writes hits.tsv and homologs/<query>/retrieved_homologs.fasta,
  4. aligns the first query's homologs into final_msa.sto (MAFFT -> RNAalifold -> Infernal).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run index → search → MSA on bundled real Rfam families",
        description="Run the whole RiNALMo-Search path on installed data, offline.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", default="rinalmo-search-demo", metavar="DIR", help="output folder")
    parser.add_argument("--top-k", type=int, default=20, metavar="K", help="hits per query")
    parser.add_argument("--model", metavar="NAME_OR_PATH", help="model (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="threads for the MSA")
    parser.set_defaults(handler=run)


def find_demo_alignment() -> Path:
    """Path of Infernal's installed ``4.sto``.

    Raises:
        InputError: Infernal's examples are not installed.
    """
    for path in DEMO_ALIGNMENTS:
        if path.is_file():
            return path
    raise InputError(
        "demo data not found: install Debian's 'infernal' package (it ships "
        f"{DEMO_ALIGNMENTS[0]}), e.g. with 'make setup'"
    )


def split_queries(
    records: list[SequenceRecord],
) -> tuple[list[SequenceRecord], list[SequenceRecord]]:
    """The first record of each family as queries, the rest as the database."""
    seen: set[str] = set()
    queries: list[SequenceRecord] = []
    database: list[SequenceRecord] = []
    for record in records:
        (database if record.family in seen else queries).append(record)
        seen.add(record.family)
    return queries, database


def run(args: argparse.Namespace) -> int:
    from rinalmo_search.msa import build_msa

    require_positive(args, "top_k", "threads")
    out = Path(args.out)
    settings = load_settings(db=str(out / "demo.db"), collection="demo", model=args.model)
    records = read_stockholm_records(find_demo_alignment())
    queries, database = split_queries(records)
    write_fasta(queries, out / "queries.fasta")
    write_fasta(database, out / "database.fasta")

    with open_embedder(settings) as embedder, open_store(settings) as store:
        report = index_records(database, store, embedder, progress=not args.quiet)
        log.info("index: %s", report.summary())
        results = search_records(
            queries, store, embedder, top_k=args.top_k, rerank=DEFAULT_RERANK, threads=args.threads
        )
    hits_tsv = out / "hits.tsv"
    fasta_files = write_search_outputs(queries, results, hits_tsv, out / "homologs")

    same_family: dict[str, float] = defaultdict(float)
    for query, hits in zip(queries, results, strict=True):
        if hits:
            same_family[query.id] = sum(h.family == query.family for h in hits) / len(hits)
    msa_path = out / "final_msa.sto"
    msa = build_msa(fasta_files[0], msa_path, threads=args.threads)

    lines = [
        f"database   {out / 'database.fasta'} ({len(database)} sequences of "
        f"{len({r.family for r in records})} Rfam families)",
        f"collection {settings.db} (collection '{settings.collection}', model {report.model})",
        f"queries    {out / 'queries.fasta'}",
        f"hits       {hits_tsv}",
    ]
    for query, path in zip(queries, fasta_files, strict=True):
        lines.append(
            f"homologs   {path}  (query {query.family}: "
            f"{same_family[query.id]:.0%} of top {args.top_k} in the same family)"
        )
    lines.append(
        f"MSA        {msa.path} ({msa.n_sequences} sequences, aligner {msa.aligner_used}, "
        f"homologs of {queries[0].id})"
    )
    print("\n".join(lines))
    return 0
