"""``rinalmo-search weights``: download and locate the published RiNALMo checkpoints."""

from __future__ import annotations

import argparse
import logging
import sys

from rinalmo_search.cli import HelpFormatter

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # fetch the 650M-parameter model (2.6 GB) into the cache folder, checksum verified
  rinalmo-search weights download giga

  # into a chosen folder (the same as setting RINALMO_SEARCH_WEIGHTS_DIR)
  RINALMO_SEARCH_WEIGHTS_DIR=/data/weights rinalmo-search weights download micro

  # which weights are known, and which are present
  rinalmo-search weights list

  # without network: download rinalmo_micro_pretrained.pt elsewhere, then put it where
  # 'rinalmo-search weights path micro' says

weights come from the RiNALMo authors' Zenodo record 15043668 (CC BY 4.0); nothing is ever
downloaded implicitly.
"""


DOWNLOAD_EXAMPLES = """\
examples:
  # the 33M-parameter model, then embed with it
  rinalmo-search weights download micro
  rinalmo-search embed rna.fasta --checkpoint micro --features backbone --out micro.npy

  # into a chosen folder
  rinalmo-search weights download giga --dir /data/rinalmo-weights
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="download or locate the published RiNALMo checkpoints",
        description="Manage the official RiNALMo weights (giga 650M, mega 148M, micro 33M "
        "parameters) in the cache folder ($RINALMO_SEARCH_WEIGHTS_DIR, default "
        "~/.cache/rinalmo_search/weights).",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    download = actions.add_parser(
        "download",
        help="download and verify weights",
        description="Download one of the official RiNALMo checkpoints from the authors' Zenodo "
        "record into the cache folder, check its SHA-256, and print where it went. An existing "
        "verified file is kept (use --force to fetch it again); an interrupted download leaves "
        "no partial file under the final name.",
        epilog=DOWNLOAD_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    download.add_argument("name", choices=("giga", "mega", "micro"), help="which weights")
    download.add_argument("--force", action="store_true", help="download even if present")
    download.add_argument("--dir", metavar="DIR", help="target folder (default: cache folder)")
    path = actions.add_parser(
        "path",
        help="print where weights are (or go)",
        description="Print the file that 'weights download NAME' writes and '--checkpoint NAME' "
        "reads, whether or not it exists yet.",
        epilog="examples:\n  # put a checkpoint fetched on another machine where it is looked for\n"
        "  cp rinalmo_micro_pretrained.pt \"$(rinalmo-search weights path micro)\"\n",
        formatter_class=HelpFormatter,
    )
    path.add_argument("name", choices=("giga", "mega", "micro"), help="which weights")
    actions.add_parser(
        "list",
        help="list known weights and whether they are present",
        description="A table of the published weights: name, file, present (yes/no), SHA-256.",
        epilog="examples:\n  rinalmo-search weights list\n",
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=run, weights_parser=parser)


def run(args: argparse.Namespace) -> int:
    from rinalmo_search.embedder.pretrained import (
        PUBLISHED,
        download_weights,
        weights_dir,
        weights_path,
    )

    if args.action == "download":
        target = download_weights(
            args.name, directory=args.dir, force=args.force, progress=not args.quiet
        )
        print(target)
        return 0
    if args.action == "path":
        print(weights_path(args.name))
        return 0
    if args.action == "list":
        print(f"# folder: {weights_dir()}")
        print("name\tfile\tpresent\tsha256")
        for name, weights in PUBLISHED.items():
            present = "yes" if weights_path(name).is_file() else "no"
            print(f"{name}\t{weights.filename}\t{present}\t{weights.sha256}")
        return 0
    args.weights_parser.print_help(sys.stderr)
    return 2
