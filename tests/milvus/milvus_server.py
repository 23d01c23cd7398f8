"""Run a real Milvus standalone server (PyPI ``milvus==2.3.5``) until stdin closes.

Started by the ``milvus_server`` fixture as a subprocess whose working directory is outside
the repository (the repository's ``milvus/`` folder would shadow the ``milvus`` package).
Prints ``URI http://127.0.0.1:PORT`` once the server is healthy.

Usage: python milvus_server.py DATA_DIR
"""

from __future__ import annotations

import signal
import sys

from milvus import MilvusServer

SERVICES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


def main() -> int:
    server = MilvusServer()
    server.set_base_dir(sys.argv[1])
    for service in SERVICES:
        server.config.set(f"{service}.ip", "127.0.0.1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.start()
        print(f"URI http://127.0.0.1:{server.listen_port}", flush=True)
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
