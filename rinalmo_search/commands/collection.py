"""``rinalmo-search collection``: inspect and manage a Milvus collection and its versions."""

from __future__ import annotations

import argparse
import logging

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import InputError, StoreError
from rinalmo_search.pipeline import open_store
from rinalmo_search.seqio import read_lines

from .common import add_store_options, settings_from_args

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # what is in a collection: model, dimension, rows, versions, the index really built
  rinalmo-search collection info --db rna.db

  # check that the HNSW index was built with the requested parameters (waits for the build)
  rinalmo-search collection verify --db rna.db

  # remove sequences by id (ids on the command line or one per line in a file)
  rinalmo-search collection delete NR_003286.2/1-1522 --db rna.db --ids-file retired.txt

  # swap a rebuilt version in behind the alias, then drop the old one
  rinalmo-search collection versions --db http://milvus:19530
  rinalmo-search collection promote rinalmo_search_v2 --db http://milvus:19530 --drop-previous

  # delete the whole collection (every version and the alias)
  rinalmo-search collection drop --db rna.db --yes

versions: the collection name is an alias (rinalmo_search) for a physical collection
(rinalmo_search_v1, _v2, ...); searches go through the alias, so promoting a new version
switches every client at once.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collection",
        help="inspect, verify and manage a Milvus collection (versions, deletes)",
        description="Inspect and manage the Milvus collection that 'index' builds and 'search' "
        "reads.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "action",
        choices=("info", "verify", "versions", "delete", "promote", "drop-version", "drop"),
        help="what to do",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="ids for 'delete' (before any option); the version for 'promote' and 'drop-version'",
    )
    parser.add_argument("--ids-file", metavar="FILE", help="ids to delete, one per line")
    parser.add_argument(
        "--drop-previous", action="store_true", help="promote: drop the version replaced"
    )
    parser.add_argument("--yes", action="store_true", help="drop: confirm deleting everything")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, metavar="S", help="verify: longest wait"
    )
    add_store_options(parser)
    parser.set_defaults(handler=run)


def _one_name(args: argparse.Namespace) -> str:
    if len(args.names) != 1:
        raise InputError(
            f"'collection {args.action}' takes one version name (e.g. rinalmo_search_v2), "
            f"found {len(args.names)}: {' '.join(args.names) or 'none'}"
        )
    return str(args.names[0])


def _ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.names)
    if args.ids_file:
        ids += [line.strip() for _, line in read_lines(args.ids_file, "ids file") if line.strip()]
    if not ids:
        raise InputError("'collection delete' needs ids (arguments or --ids-file), found none")
    return ids


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # every action reads or changes an existing database: a mistyped --db must not create one
    with open_store(settings, create=False) as store:
        if args.action == "info":
            target = store.physical_name()
            if target is None:
                raise StoreError(
                    f"Collection {store.alias!r} does not exist in {store.uri}; create it "
                    f"with 'rinalmo-search index --db {store.uri} FASTA'"
                )
            tag, dim = store.stored_model()
            print(f"collection\t{store.alias}")
            print(f"active\t{target}")
            print(f"versions\t{','.join(store.versions()) or target}")
            print(f"model\t{tag}")
            print(f"dimension\t{dim}")
            print(f"sequences\t{store.count()}")
            report = store.index_report()
            print(f"index\t{report.summary()}")
            problems = report.problems()
            print(f"index_check\t{'ok' if not problems else '; '.join(problems)}")
        elif args.action == "verify":
            store.wait_for_index(timeout=args.timeout)
            print(store.verify_index().summary())
        elif args.action == "versions":
            active = store.physical_name()
            for name in store.versions():
                print(f"{name}\t{'active' if name == active else ''}".rstrip())
        elif args.action == "delete":
            ids = _ids(args)
            deleted = store.delete(ids)
            store.flush()
            log.info("deleted %d of %d ids; %d sequences remain", deleted, len(ids), store.count())
            print(deleted)
        elif args.action == "promote":
            previous = store.promote(_one_name(args), drop_previous=args.drop_previous)
            log.info("%s now points at %s (was %s)", store.alias, args.names[0], previous)
        elif args.action == "drop-version":
            store.drop_version(_one_name(args))
        elif args.action == "drop":
            if not args.yes:
                raise InputError(
                    f"'collection drop' deletes {store.alias!r} and all its versions; "
                    "add --yes to confirm"
                )
            store.drop_all()
    return 0
