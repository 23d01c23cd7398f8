"""Triton (gRPC, CPU tritonserver) vs the in-process embedder: latency and throughput.

Same model, same sequences, same run. Each client sends one sequence per request (a query's
path); 1, 8 and 32 concurrent clients. The in-process side runs the same ``TorchEmbedder`` from
as many threads; Triton's side gives each client its own :class:`TritonEmbedder` (one gRPC
channel each) so the server's dynamic batcher can merge their requests.

Usage::

    .venv/bin/python bench/triton_bench.py                      # random-weight RiNALMo-micro
    .venv/bin/python bench/triton_bench.py --model my_model.pt  # a RiNALMo-Search model file
    .venv/bin/python bench/triton_bench.py --preset tiny --requests 640  # serving overhead

Prints a Markdown table and writes it, with the raw figures as JSON, under ``bench/out/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from rinalmo_search.embedder.base import Embedder
from rinalmo_search.embedder.triton.client import TritonEmbedder
from rinalmo_search.embedder.triton.server import TritonServer

log = logging.getLogger("triton_bench")

ROOT = Path(__file__).resolve().parents[1]
RFAM_SEQUENCES = ROOT.parent / "shared" / "data" / "rfam" / "sequences.fasta"
MODEL_NAME = "rinalmo_search"


def workload(count: int, min_length: int, max_length: int, seed: int) -> list[str]:
    """Rfam seed sequences in the length range (random RNA when the data is absent)."""
    rng = np.random.default_rng(seed)
    if RFAM_SEQUENCES.is_file():
        from rinalmo_search.seqio import iter_fasta

        pool = [r.sequence for r in iter_fasta(RFAM_SEQUENCES)
                if min_length <= len(r.sequence) <= max_length]  # fmt: skip
        if len(pool) >= count:
            return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]
    return ["".join(rng.choice(list("ACGU"), size=int(rng.integers(min_length, max_length + 1))))
            for _ in range(count)]  # fmt: skip


def build_embedder(model: str | None, seed: int, preset: str = "micro") -> Embedder:
    """The in-process embedder: a model file / registry name, or random-weight RiNALMo + head.

    ``preset`` is a RiNALMo preset, or ``tiny`` (2 blocks of width 40: shows serving overhead
    rather than model compute).
    """
    if model:
        from rinalmo_search.embedder.registry import load_embedder

        return load_embedder(model)
    from rinalmo_search.embedder.head import HeadConfig, HomologyHead
    from rinalmo_search.embedder.local import TorchEmbedder
    from rinalmo_search.embedder.rinalmo import RiNALMoConfig, build_model

    torch.manual_seed(seed)
    if preset == "tiny":
        config = RiNALMoConfig(name="tiny", embed_dim=40, num_blocks=2, num_heads=4, ffn_dim=96)
    else:
        config = RiNALMoConfig.preset(preset)
    backbone = build_model(config)
    head = HomologyHead(HeadConfig(input_dim=backbone.config.embed_dim, num_blocks=2))
    return TorchEmbedder(
        backbone, head, name=f"rinalmo-{preset}-random", version=f"seed{seed}", progress=False
    )


def run_clients(
    make_client: Callable[[], Embedder], sequences: Sequence[str], clients: int
) -> dict[str, float]:
    """``clients`` threads share the sequences, one per request; latencies and throughput."""
    latencies: list[float] = []
    lock = threading.Lock()
    next_index = [0]
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            embedder = make_client()
            barrier.wait()
            while True:
                with lock:
                    index = next_index[0]
                    next_index[0] += 1
                if index >= len(sequences):
                    break
                start = time.perf_counter()
                embedder.embed([sequences[index]])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    values = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "seq_per_s": len(latencies) / wall,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file or registry name (default: random weights)")
    parser.add_argument(
        "--preset", default="micro", help="RiNALMo preset of the random model, or 'tiny'"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=64, help="requests per client level")
    parser.add_argument("--min-length", type=int, default=50)
    parser.add_argument("--max-length", type=int, default=150)
    parser.add_argument("--torch-threads", type=int, default=1, help="per side (and backend)")
    parser.add_argument("--triton-url", help="use this server (serving the same model) instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("rinalmo_search").setLevel(logging.WARNING)
    torch.set_num_threads(args.torch_threads)

    local = build_embedder(args.model, args.seed, args.preset)
    sequences = workload(args.requests, args.min_length, args.max_length, args.seed)
    lengths = [len(s) for s in sequences]
    log.info("model %s; %d sequences of %d-%d nt (median %d)", local.info.tag, len(sequences),
             min(lengths), max(lengths), int(np.median(lengths)))  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="triton-bench-") as workdir:
        server = None
        url = args.triton_url
        if url is None:
            from rinalmo_search.embedder.export import export_torchscript
            from rinalmo_search.embedder.triton.repository import write_model_repository

            repository = Path(workdir) / "model_repository"
            export_torchscript(local, repository / MODEL_NAME / "1" / "model.pt")
            write_model_repository(repository, MODEL_NAME, local.info, 1024,
                                   torch_threads=args.torch_threads)  # fmt: skip
            server = TritonServer(repository, startup_timeout_s=300).start()
            url = server.url
        try:
            with TritonEmbedder(url, model=MODEL_NAME) as probe:
                difference = float(np.abs(probe.embed(sequences[:8]) - local.embed(sequences[:8]))
                                   .max())  # fmt: skip
            log.info("Triton vs local max abs diff on 8 sequences: %.3g", difference)
            local.embed(sequences[:2])  # warm-up
            rows = []
            for clients in args.clients:
                for side, make in (
                    ("in-process", lambda: local),
                    ("triton", lambda: TritonEmbedder(url, model=MODEL_NAME)),
                ):
                    result = run_clients(make, sequences, clients)
                    result["side"] = side  # type: ignore[assignment]
                    rows.append(result)
                    log.info("%s", result)
        finally:
            if server is not None:
                server.stop()

    table = [
        f"model {local.info.tag}, {len(sequences)} requests of 1 sequence "
        f"({min(lengths)}-{max(lengths)} nt), torch threads {args.torch_threads}, "
        f"Triton vs local max abs diff {difference:.2g}",
        "",
        "| clients | side | p50 ms | p95 ms | seq/s |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        table.append(f"| {row['clients']} | {row['side']} | {row['p50_ms']:.1f} | "
                     f"{row['p95_ms']:.1f} | {row['seq_per_s']:.1f} |")  # fmt: skip
    text = "\n".join(table)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "triton_bench.md").write_text(text + "\n")
    (args.out / "triton_bench.json").write_text(
        json.dumps({"model": local.info.tag, "max_abs_diff": difference, "rows": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
