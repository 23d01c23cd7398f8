"""``rinalmo-search index``: embed FASTA files and add them to a collection."""

from __future__ import annotations

import argparse
import logging

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.config import mask_uri
from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.milvus import check_limits
from rinalmo_search.milvus import schema as S
from rinalmo_search.pipeline import index_records, open_embedder, open_store
from rinalmo_search.seqio import (
    STDIO,
    check_output,
    display_name,
    open_output,
    read_fasta,
    read_labels,
)

from .common import add_model_options, add_store_options, refuse_inside_database, settings_from_args

log = logging.getLogger(__name__)

EXAMPLES = f"""\
examples:
  # build a collection in a local Milvus Lite file
  rinalmo-search index rfam_seeds.fasta --db rna.db

  # add more sequences later: only the new ones are embedded and inserted
  rinalmo-search index rfam_seeds.fasta new_isolates.fasta --db rna.db

  # family and clan labels from a table instead of the FASTA headers
  rinalmo-search index seqs.fasta --db rna.db --labels labels.tsv

  # rebuild with another model without downtime: searches use the old version until the end
  rinalmo-search index rfam_seeds.fasta --db rna.db --model kmer --new-version --drop-previous

  # a Milvus server (token from $RINALMO_SEARCH_MILVUS_TOKEN)
  rinalmo-search index seqs.fasta --db http://milvus.example.org:19530 --collection rfam

  # a compressed file, or sequences from a pipe
  zcat big.fa.gz | rinalmo-search index - --db rna.db --report counts.tsv

labels: a FASTA header of the form '>ID RF00005 CL00001 ...' (Rfam accession, then clan accession
or NA) labels the record; --labels TSV (columns: id family clan, header optional) overrides it.

inputs: FASTA and labels files may be gzip-compressed or '-' (standard input), UTF-8 (a
byte-order mark is ignored; other bytes stop with the file and line). --report is checked
for writability before anything is stored.

limits: a sequence of at most {S.MAX_SEQUENCE_LENGTH:,} nt, an id of at most {S.MAX_ID_LENGTH}
bytes (UTF-8), family and clan accessions of at most {S.MAX_LABEL_LENGTH} bytes. Every record
is checked before anything is written: one over a limit stops the run with its file and line,
and the collection is left as it was.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="embed FASTA files and add the new sequences to a collection",
        description="Embed sequences and insert them into a Milvus collection. Sequences already "
        "in the collection (same id, same sequence) are skipped, so reruns and interrupted runs "
        "are safe.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("fasta", nargs="+", metavar="FASTA", help="FASTA file(s) of RNA sequences")
    parser.add_argument("--labels", metavar="TSV", help="id→family/clan table (id family clan)")
    parser.add_argument(
        "--upsert",
        action="store_true",
        help="replace records whose id exists with another sequence",
    )
    parser.add_argument(
        "--new-version",
        action="store_true",
        help="build a new version of the collection (e.g. with another model) while searches "
        "keep using the current one, then switch the collection name to it",
    )
    parser.add_argument(
        "--drop-previous", action="store_true", help="with --new-version: drop the old version"
    )
    parser.add_argument("--batch-size", type=int, metavar="N", help="sequences embedded per batch")
    parser.add_argument(
        "--report", metavar="FILE", help="also write the run's counts as TSV ('-': stdout)"
    )
    add_store_options(parser)
    add_model_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    inputs = [*args.fasta, *([args.labels] if args.labels else [])]
    if inputs.count(STDIO) > 1:
        raise ConfigError("Standard input ('-') can be read once: give it as one input only")
    if args.report:
        check_output(args.report, option="--report", inputs=inputs)
        refuse_inside_database(settings, {"--report": args.report})
    records = read_fasta(args.fasta)
    if args.labels:
        labels = read_labels(args.labels)
        unknown = [record.id for record in records if record.id not in labels]
        if len(unknown) == len(records):
            raise InputError(
                f"{display_name(args.labels)}: none of the {len(records)} FASTA ids has a label"
            )
        for record in records:
            record.family, record.clan = labels.get(record.id, (record.family, record.clan))
    check_limits(records)  # before the database is created or opened
    with open_embedder(settings) as embedder, open_store(settings) as store:
        report = index_records(
            records,
            store,
            embedder,
            batch_size=settings.batch_size,
            upsert=args.upsert,
            new_version=args.new_version,
            drop_previous=args.drop_previous,
            progress=not args.quiet,
        )
    database = mask_uri(settings.db)
    log.info("%s: %s", database, report.summary())
    if args.report:
        with open_output(args.report) as handle:
            handle.write("database\tcollection\tmodel\tread\tadded\ttotal\tseconds\n")
            handle.write(
                f"{database}\t{settings.collection}\t{report.model}\t{report.n_input}\t"
                f"{report.n_new}\t{report.n_total}\t{report.seconds:.2f}\n"
            )
    return 0
