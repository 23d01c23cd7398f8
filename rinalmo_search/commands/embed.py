"""``rinalmo-search embed``: write RiNALMo features or homology embeddings of a FASTA as .npy."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.config import load_settings
from rinalmo_search.errors import ConfigError
from rinalmo_search.seqio import atomic_write, iter_fasta_as_written

from .common import require_positive

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # mean-pooled backbone features of an official RiNALMo checkpoint (n x 1280 for giga)
  rinalmo-search embed rna.fasta --checkpoint rinalmo_giga_pretrained.pt \\
      --features backbone --out features.npy

  # the same with downloaded weights ('rinalmo-search weights download micro' first)
  rinalmo-search embed rna.fasta --checkpoint micro --features backbone --out micro.npy

  # 512-d homology embeddings of a trained model file, record ids alongside
  rinalmo-search embed rna.fasta --model models/rinalmo-homology.pt --out emb.npy --ids ids.txt

  # a feature-only model file whose backbone weights live elsewhere
  rinalmo-search embed rna.fasta --model head.pt --checkpoint giga --out emb.npy

rows follow the FASTA order, one per record (repeated records included). Sequences are read as
written: case is ignored, U and T are the same token, gaps and IUPAC codes keep their own tokens
(exactly what the official RiNALMo tokeniser does).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="write RiNALMo backbone features or homology embeddings of a FASTA as .npy",
        description="Embed every record of FASTA files and write an (n x d) float32 .npy "
        "array.\n  --features backbone: residue-mean-pooled final-layer RiNALMo features of an "
        "official checkpoint\n  --features head: the model's unit-length homology embeddings",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("fasta", nargs="+", metavar="FASTA", help="FASTA file(s)")
    parser.add_argument("--out", required=True, metavar="OUT.npy", help="output array")
    parser.add_argument(
        "--features", choices=("backbone", "head"), default="head", help="what to write"
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH_OR_NAME",
        help="official RiNALMo checkpoint (.pt) or downloaded weights name (giga, mega, micro)",
    )
    parser.add_argument(
        "--model", metavar="NAME_OR_PATH", help="model name or model file (for --features head)"
    )
    parser.add_argument("--ids", metavar="FILE", help="also write the record ids, one per line")
    parser.add_argument("--threads", type=int, metavar="N", help="torch threads")
    parser.add_argument(
        "--batch-size", type=int, default=8, metavar="N", help="sequences per forward pass"
    )
    parser.add_argument(
        "--heads",
        type=int,
        metavar="N",
        help="attention heads of a non-preset checkpoint (not visible in its tensors; "
        "every official preset has 20)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="backbone precision (bfloat16: ~2x faster on CPU, approximate)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rinalmo_search.embedder import DEFAULT_MODEL, load_embedder
    from rinalmo_search.embedder.local import TorchEmbedder

    require_positive(args, "threads", "batch_size", "heads")
    records = [record for path in args.fasta for record in iter_fasta_as_written(path)]
    sequences = [sequence for _, sequence in records]
    settings = load_settings()
    options: dict[str, object] = {
        "threads": args.threads or settings.threads,
        "batch_size": args.batch_size,
        "dtype": torch.bfloat16 if args.dtype == "bfloat16" else torch.float32,
        "progress": None if not args.quiet else False,
    }
    model_name = args.model or settings.model or ""
    if args.features == "backbone":
        if args.checkpoint:
            from rinalmo_search.embedder.pretrained import load_backbone

            overrides = {"num_heads": args.heads} if args.heads else {}
            embedder = TorchEmbedder(load_backbone(args.checkpoint, **overrides), None,
                                     **options)  # type: ignore[arg-type]
        elif model_name.endswith(".pt"):
            embedder = TorchEmbedder.from_model_file(model_name, **options)
        else:
            raise ConfigError(
                "--features backbone needs --checkpoint PATH_OR_NAME (an official RiNALMo "
                "checkpoint) or --model MODEL_FILE.pt"
            )
        vectors = embedder.embed_features(sequences)
    else:
        name = model_name or DEFAULT_MODEL
        if name.endswith(".pt"):
            if args.checkpoint:
                options["checkpoint"] = args.checkpoint
            embedder = load_embedder(name, **options)
        else:
            if args.checkpoint:
                raise ConfigError(
                    f"--checkpoint applies to model files and --features backbone, not to the "
                    f"named model {name!r}"
                )
            embedder = load_embedder(name)
        vectors = embedder.embed(sequences)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with atomic_write(args.out, mode="wb") as handle:
        np.save(handle, vectors)
    if args.ids:
        with atomic_write(args.ids) as handle:
            handle.write("".join(f"{record_id}\n" for record_id, _ in records))
    log.info("wrote %s (%d x %d float32)", args.out, *vectors.shape)
    return 0
