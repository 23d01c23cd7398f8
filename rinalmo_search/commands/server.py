"""``rinalmo-search server``: start, inspect and stop a local Milvus standalone server."""

from __future__ import annotations

import argparse
import time

from rinalmo_search.cli import HelpFormatter

NAME = "server"
NOT_RUNNING = 3  # exit code of 'status' when no server runs (as LSB init scripts use it)

EXAMPLES = """\
examples:
  # start a server in the background (data under ~/.local/share/rinalmo-search/milvus-server)
  rinalmo-search server start
  # -> Milvus server started in 8.1 s (pid 4242, data ..., log .../logs/server.log)
  # -> URI http://127.0.0.1:19530

  # use it: index and search take its URI as --db
  rinalmo-search index rfam_seeds.fasta --db http://127.0.0.1:19530
  rinalmo-search search query.fasta --db http://127.0.0.1:19530 --out hits.tsv

  # is it running? (exit code 0: yes and answering, 3: not running, 1: not answering)
  rinalmo-search server status

  # stop it (the data stay; 'start' again serves them; a crashed server restarts as quickly)
  rinalmo-search server stop

  # another data folder and port (servers on different folders can run side by side)
  rinalmo-search server start --data /scratch/rna-milvus --port 19531

  # in a script: the URI is the last line
  uri=$(rinalmo-search server start --data /scratch/rna-milvus --port 19531 | tail -1)
  rinalmo-search search q.fa --db "${uri#URI }" --out hits.tsv

This is the real Milvus 2.3.5 standalone server of the 'milvus' PyPI package (no Docker): use it
for large collections on one machine, where Milvus Lite files get slow (every Lite search scans
every row in Python). It is configured for large segments (8 GB x 0.5), so a 1M-sequence
collection is searched as ~4 HNSW graphs. 'start' prints the URI on its last line; a second
'start' on the same data folder reports the running server. Its log is DATA/logs/server.log.
Its ports listen on every interface and it has no authentication: firewall them on a shared
network. For production, run Milvus 2.5+ from docker/ or Helm; the same --db URI works.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``server`` sub-command."""
    parser = subparsers.add_parser(
        NAME,
        help="start, check or stop a local Milvus server (large collections, no Docker)",
        description="Run a real Milvus standalone server in the background on this machine "
        "and print its URI for --db.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("action", choices=("start", "status", "stop"), help="what to do")
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="the server's data folder (default: "
        "$XDG_DATA_HOME/rinalmo-search/milvus-server, i.e. "
        "~/.local/share/rinalmo-search/milvus-server)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=19530,
        metavar="N",
        help="start: the client port, in the URI http://127.0.0.1:N",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="start: longest wait for the server to answer",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Do ``args.action``; the last line of a successful ``start`` is ``URI http://...``."""
    from rinalmo_search.milvus import server

    if args.action == "start":
        began = time.monotonic()
        info, started = server.start(args.data, args.port, timeout=args.timeout)
        if started:
            print(
                f"Milvus server started in {time.monotonic() - began:.1f} s (pid {info.pid}, "
                f"data {info.data_dir}, log {info.log})"
            )
        else:
            note = f"; --port {args.port} ignored" if info.port != args.port else ""
            print(f"Milvus server already running (pid {info.pid}, data {info.data_dir}{note})")
        print(f"URI {info.uri}", flush=True)
        return 0
    if args.action == "status":
        info = server.status(args.data)
        if info is None:
            print(f"not running (data {server.data_path(args.data)})")
            return NOT_RUNNING
        healthy = server.is_healthy(info)
        state = "running" if healthy else f"running but not answering (see {info.log})"
        print(f"{state} (pid {info.pid}, data {info.data_dir})")
        print(f"URI {info.uri}")
        return 0 if healthy else 1
    began = time.monotonic()
    info = server.stop(args.data)
    if info is None:
        print(f"not running (data {server.data_path(args.data)})")
    else:
        print(f"Milvus server stopped in {time.monotonic() - began:.1f} s (pid {info.pid})")
    return 0
