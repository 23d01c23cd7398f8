"""The ``rinalmo-search`` command.

Each sub-command lives in its own module under :mod:`rinalmo_search.commands` and exposes
``register(subparsers)``; this module discovers them, so adding a command never edits this file.
A registered parser sets ``handler=function(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence

# gRPC's C core (under pymilvus and tritonclient) prints keep-alive chatter to stderr; it has to
# be silenced before grpc is first imported, i.e. before the command modules are.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from . import __version__, commands  # noqa: E402
from .errors import RinalmoSearchError

log = logging.getLogger("rinalmo_search")

DESCRIPTION = """\
RNA homology search: embed RNA sequences, search them in a Milvus collection, and align the
hits into a structure-aware Stockholm MSA.

typical session:
  rinalmo-search index library.fasta --db rna.db          # build or extend a collection
  rinalmo-search search query.fasta --db rna.db --out hits.tsv --fasta-out hits/
  rinalmo-search msa hits/QUERY_ID/retrieved_homologs.fasta --out final_msa.sto
  rinalmo-search demo                                      # all of the above on bundled data

Run 'rinalmo-search COMMAND --help' for each command's options and examples.
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps example blocks as written and shows the defaults that exist."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (
            "%(default)" not in help_text
            and action.default not in (None, False, "", argparse.SUPPRESS)
            and action.option_strings
        ):
            help_text += " (default: %(default)s)"
        return help_text


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser: with ``argv`` naming a command, only that command's module is
    imported (a one-query search must not pay for importing the MSA or training code);
    otherwise every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="rinalmo-search", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbosity_options(parser, default=0)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in _command_modules(argv):
        module = importlib.import_module(f"{commands.__name__}.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    for subparser in subparsers.choices.values():
        # -v/-q after the command name too; SUPPRESS keeps the top-level value when absent
        _add_verbosity_options(subparser, default=argparse.SUPPRESS)
    return parser


def _command_modules(argv: Sequence[str] | None) -> list[str]:
    """Modules under :mod:`.commands` to import: the one ``argv`` names, else all of them.

    A command ``evaluate-msa`` lives in module ``evaluate_msa``. Top-level options take no
    values, so the first argument that is not an option is the command.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(commands.__path__))
    chosen = next((arg for arg in argv or () if not arg.startswith("-")), None)
    module = chosen.replace("-", "_") if chosen else None
    return [module] if module in names else names


def _add_verbosity_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more logging; -vv also shows tracebacks",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="only warnings and errors"
    )


def _configure_logging(verbosity: int, quiet: bool) -> None:
    """Our messages at INFO (DEBUG with -v); other libraries' only at WARNING unless -vv.

    Milvus Lite logs its start-up chatter at INFO and an unimplemented gRPC call as an ERROR
    with a traceback on every connection; neither means anything to a user.
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbosity else logging.INFO
    logging.basicConfig(
        level=logging.DEBUG if verbosity >= 2 else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(level)
    if verbosity < 2:
        # errors we turn into a one-line StoreError are also logged with a traceback there
        for name in ("grpc._server", "milvus_lite", "pymilvus"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rinalmo-search``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # a process started in the background by a non-interactive shell inherits SIGINT
        # ignored; 'kill -INT' must still stop a run and its programs cleanly
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except RinalmoSearchError as error:
        if args.verbose >= 2:
            log.exception("failed")
        print(f"rinalmo-search: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rinalmo-search: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
