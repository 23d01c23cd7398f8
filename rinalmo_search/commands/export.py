"""``rinalmo-search export``: write a model as TorchScript into a Triton model repository."""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from rinalmo_search.cli import HelpFormatter
from rinalmo_search.errors import InferenceError

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # export a trained model file; Triton then serves it as 'rinalmo_search'
  rinalmo-search export --model models/rinalmo-homology.pt --repository model_repository/

  # another Triton model name, a feature-only model file with its backbone checkpoint
  rinalmo-search export --model head.pt --checkpoint giga --repository model_repository/ \\
      --name rinalmo_giga

writes <repository>/<name>/1/model.pt: one scripted module, inputs input_ids and
attention_mask (int64 [batch, length]; mask 1 on real tokens incl. <cls>/<eos>), output
float32 [batch, dim] unit rows. Then the Triton configs are written around it.
"""

#: Known sequences used to check that the exported file reproduces the eager model.
_CHECK_SEQUENCES = ["GGGAGCUCAGCCGGUAGAGCAAGCGGCUAGCUCCC", "ACGU" * 12, "GUCA"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a model as TorchScript (and Triton configs) into a model repository",
        description="Script a RiNALMo-based model (LoRA merged, float32) into one TorchScript "
        "file inside a Triton model repository, check it against the eager model, and write "
        "the Triton configuration next to it.",
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
        default=1024,
        metavar="TOKENS",
        help="longest input in tokens (residues + 2), as RiNALMo was trained",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rinalmo_search.embedder import load_embedder
    from rinalmo_search.embedder.export import export_module, export_torchscript, parity

    options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    embedder = load_embedder(args.model, **options)
    target = Path(args.repository) / args.name / "1" / "model.pt"
    export_torchscript(embedder, target)
    difference = parity(export_module(embedder), torch.jit.load(str(target)), _CHECK_SEQUENCES)
    if difference > 1e-4:
        raise InferenceError(
            f"Exported {target} differs from the eager model by {difference:.2e} (expected "
            "<= 1e-4)"
        )
    log.info("TorchScript matches the eager model (max abs diff %.1e)", difference)
    try:
        triton = importlib.import_module("rinalmo_search.embedder.triton_repository")
    except ImportError:
        log.warning("no Triton repository writer installed; wrote only %s", target)
        return 0
    triton.write_model_repository(Path(args.repository), args.name, embedder.info,
                                  args.max_length)
    log.info("model repository %s ready (model %r, %s)", args.repository, args.name,
             embedder.info.tag)
    return 0
