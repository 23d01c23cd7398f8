"""``rinalmo-search serve``: run the model repository on a local CPU Triton server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import ConfigError

log = logging.getLogger(__name__)

NAME = "serve"

EXAMPLES = """\
examples:
  # serve model_repository/ (written by 'rinalmo-search export') on 127.0.0.1:8001
  rinalmo-search serve

  # then, in another shell, embed through it
  rinalmo-search search query.fasta --db rna.db --embedder triton --triton-url 127.0.0.1:8001
  export RINALMO_SEARCH_EMBEDDER=triton RINALMO_SEARCH_TRITON_URL=127.0.0.1:8001
  rinalmo-search index library.fasta --db rna.db

  # any free port, another repository, reachable from other machines
  rinalmo-search serve --repository /data/model_repository --port 0 --host 0.0.0.0

This runs the CPU configuration (configs/cpu_python.pbtxt: Triton's Python backend loading
1/model.pt) with the tritonserver binary bundled in the nvidia-pytriton package. For a GPU,
run NVIDIA's Triton container on the same repository instead (see docker/README.md).
Stop with Ctrl-C.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        NAME,
        help="serve the model repository with a local CPU Triton server",
        description="Start tritonserver (CPU, Python backend) on the model repository and "
        "print its gRPC URL; runs until interrupted.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path("model_repository"),
        metavar="DIR",
        help="Triton model repository",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind the gRPC endpoint")
    parser.add_argument("--port", type=int, default=8001, help="gRPC port (0: pick a free port)")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up if the server and its models are not ready after this long",
    )
    parser.add_argument("--log-file", type=Path, metavar="PATH", help="write the server's log here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start the server, print its URL, and wait for Ctrl-C or SIGTERM."""
    from rinalmo_search.embedder.triton.server import TritonServer

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"Invalid '--port' value: {args.port} (expected 0..65535)")
    repository = args.repository
    if not repository.is_dir() or not any(repository.glob("*/1/model.pt")):
        raise ConfigError(
            f"No exported model in {repository} (expected {repository}/NAME/1/model.pt; "
            "run 'rinalmo-search export --repository "
            f"{repository}' first)"
        )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received signal %d; stopping", signum)
        stop.set()

    # SIGINT too, explicitly: a shell's background job starts with SIGINT ignored
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = TritonServer(
        repository,
        host=args.host,
        grpc_port=args.port or None,
        startup_timeout_s=args.startup_timeout,
        log_path=args.log_file,
    )
    try:
        server.start()
        models = sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))
        print(f"Triton gRPC server ready at {server.url} (models: {', '.join(models)})")
        print(
            f"use it with: --embedder triton --triton-url {server.url}  "
            f"(or RINALMO_SEARCH_EMBEDDER=triton RINALMO_SEARCH_TRITON_URL={server.url})"
        )
        sys.stdout.flush()
        while not stop.wait(1.0):
            if server.pid is None or server.returncode is not None:
                log.error("tritonserver exited unexpectedly:\n%s", server.log_tail())
                return 1
    except KeyboardInterrupt:  # before the handlers were in place
        pass
    finally:
        log.info("stopping tritonserver")
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
