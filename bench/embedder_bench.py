"""CPU speed of the RiNALMo embedder: sequences/s by model shape, length, runtime and precision.

Random weights in the micro / mega / giga shapes (speed does not depend on the values), the
default homology head on top, batch 1 (batching does not raise CPU throughput here), one
torch thread by default. Each cell: one warm-up call at that length, then ``--repeats`` timed
calls. Runtimes: eager PyTorch and the scripted TorchScript module that ``export`` writes;
precisions: float32 and bfloat16 (backbone and head cast; pooling stays float32).

giga at 1000 nt takes ~16 s per call in float32 on an idle core, so the default plan samples
sparsely: giga 1000 nt only in eager mode. Results are printed as a Markdown table and,
with ``--out``, written as TSV. The machine's load average is printed with them: on a shared
box, compare cells of one run only.

    python bench/embedder_bench.py                       # default plan (~10-20 min idle)
    python bench/embedder_bench.py --presets micro --lengths 100,300 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from pathlib import Path

import torch
from rinalmo_search.embedder.alphabet import batch_encode
from rinalmo_search.embedder.head import HeadConfig, HomologyHead
from rinalmo_search.embedder.local import EmbeddingModel
from rinalmo_search.embedder.rinalmo import RiNALMoConfig, build_model, count_parameters


def random_embedding_model(preset: str) -> EmbeddingModel:
    """Backbone of a preset shape + default head, random weights, without slow initialisers."""
    backbone = build_model(RiNALMoConfig.preset(preset), device="meta").to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in backbone.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                parameter.fill_(1.0)
            elif name.endswith("beta"):
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    head = HomologyHead(HeadConfig(input_dim=backbone.config.embed_dim))
    return EmbeddingModel(backbone, head).eval()


def time_cell(model: torch.nn.Module, length: int, repeats: int) -> float:
    """Sequences per second at batch 1 for random sequences of ``length`` nt."""
    rng = random.Random(length)
    sequences = ["".join(rng.choice("ACGU") for _ in range(length)) for _ in range(repeats + 1)]
    tensors = []
    for sequence in sequences:
        ids, mask = batch_encode([sequence])
        tensors.append((torch.from_numpy(ids), torch.from_numpy(mask)))
    with torch.inference_mode():
        model(*tensors[0])  # warm-up (and TorchScript profiling run)
        start = time.perf_counter()
        for ids, mask in tensors[1:]:
            model(ids, mask)
        elapsed = time.perf_counter() - start
    return repeats / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="micro,mega,giga")
    parser.add_argument("--lengths", default="100,300,1000")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per cell")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--full", action="store_true", help="also TorchScript cells of giga at 1000 nt"
    )
    parser.add_argument("--out", type=Path, help="TSV output")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    rows: list[tuple[str, int, str, str, float]] = []
    print(f"# torch {torch.__version__}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f} at start", flush=True)
    for preset in args.presets.split(","):
        eager32 = random_embedding_model(preset)
        print(f"# {preset}: {count_parameters(eager32.backbone) / 1e6:.1f}M backbone parameters",
              flush=True)
        for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            eager = eager32 if dtype == torch.float32 else eager32.to(dtype)
            scripted = torch.jit.script(eager)
            for length in lengths:
                for runtime, model in (("eager", eager), ("torchscript", scripted)):
                    skip = (preset == "giga" and length >= 1000 and runtime == "torchscript"
                            and not args.full)
                    if skip:
                        continue
                    repeats = 1 if preset == "giga" and length >= 1000 else args.repeats
                    speed = time_cell(model, length, repeats)
                    rows.append((preset, length, runtime, dtype_name, speed))
                    print(f"{preset}\t{length}\t{runtime}\t{dtype_name}\t{speed:.3f} seq/s",
                          flush=True)
            del scripted
            gc.collect()
        del eager32
        gc.collect()
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}\n")
    print("| model | nt | eager fp32 | TorchScript fp32 | eager bf16 | TorchScript bf16 |")
    print("|---|---|---|---|---|---|")
    table = {(p, n, r, d): s for p, n, r, d, s in rows}
    for preset in args.presets.split(","):
        for length in lengths:
            cells = [table.get((preset, length, r, d)) for d in ("fp32", "bf16")
                     for r in ("eager", "torchscript")]
            order = [cells[0], cells[1], cells[2], cells[3]]
            text = ["—" if c is None else f"{c:.3g}" for c in order]
            print(f"| {preset} | {length} | " + " | ".join(text) + " |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w") as handle:
            handle.write("model\tlength\truntime\tdtype\tseq_per_s\n")
            for row in rows:
                handle.write("\t".join(str(x) for x in row[:4]) + f"\t{row[4]:.4f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
