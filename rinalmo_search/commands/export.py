"""``rinalmo-search export``: write a model as TorchScript into a Triton model repository."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import InferenceError

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # export a trained model file; Triton then serves it as 'rinalmo_search'
  rinalmo-search export --model models/rinalmo-homology.pt --repository model_repository/

  # the shipped default model (k-mer counting and projections as torch ops)
  rinalmo-search export --model compact-kmer --repository model_repository/

  # another Triton model name, a feature-only model file with its backbone checkpoint
  rinalmo-search export --model head.pt --checkpoint giga --repository model_repository/ \\
      --name rinalmo_giga

writes <repository>/<name>/1/model.pt: one scripted module, inputs input_ids and
attention_mask (int64 [batch, length]; mask 1 on real tokens incl. <cls>/<eos>), output
float32 [batch, dim] unit rows. Then the Triton configs are written around it.
"""

#: Known sequences used to check that the exported file reproduces the eager model (IUPAC
#: codes, lower case, T and a sequence shorter than any k-mer included).
_CHECK_SEQUENCES = [
    "GGGAGCUCAGCCGGUAGAGCAAGCGGCUAGCUCCC", "ACGU" * 12, "GUCA",
    "ggcuaNNacguRYacgtTTGCAUGCAUCCGA" * 3,
]
#: Default recorded input length of compact models (they have no length limit).
COMPACT_MAX_LENGTH = 4096
#: Largest accepted eager-vs-TorchScript (and compact numpy-vs-TorchScript) difference.
TOLERANCE = 1e-5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a model as TorchScript (and Triton configs) into a model repository",
        description="Script a RiNALMo-based model (LoRA merged, float32) or a compact k-mer "
        "model into one TorchScript file inside a Triton model repository, check it against "
        "the eager model (and a compact model's numpy path), and write the Triton "
        "configuration next to it.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH", help="model to export")
    parser.add_argument(
        "--repository", required=True, metavar="DIR", help="Triton model repository folder"
    )
    parser.add_argument("--name", default="rinalmo_search", help="Triton model name")
    parser.add_argument(
        "--checkpoint", metavar="PATH_OR_NAME", help="backbone of a feature-only model file"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="TOKENS",
        help="longest input in tokens (residues + 2) recorded for clients; default 1024 for "
        f"RiNALMo models (as trained), {COMPACT_MAX_LENGTH} for compact models (no length "
        "limit: longer inputs are sent one per request)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rinalmo_search.embedder import load_embedder
    from rinalmo_search.embedder.compact import CompactEmbedder
    from rinalmo_search.embedder.export import (
        export_module,
        export_torchscript,
        local_parity,
        parity,
    )
    from rinalmo_search.embedder.triton.repository import write_model_repository

    options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    embedder = load_embedder(args.model, **options)
    compact = isinstance(embedder, CompactEmbedder)
    max_length = args.max_length or (COMPACT_MAX_LENGTH if compact else 1024)
    target = Path(args.repository) / args.name / "1" / "model.pt"
    export_torchscript(embedder, target)
    scripted = torch.jit.load(str(target))
    checks = [("the eager model", parity(export_module(embedder), scripted, _CHECK_SEQUENCES))]
    if compact:
        checks.append(("the numpy embedder", local_parity(embedder, scripted, _CHECK_SEQUENCES)))
    for label, difference in checks:
        if difference > TOLERANCE:
            raise InferenceError(
                f"Exported {target} differs from {label} by {difference:.2e} (expected "
                f"<= {TOLERANCE:.0e})"
            )
        log.info("TorchScript matches %s (max abs diff %.1e)", label, difference)
    write_model_repository(Path(args.repository), args.name, embedder.info, max_length)
    log.info("model repository %s ready (model %r, %s)", args.repository, args.name,
             embedder.info.tag)
    return 0
