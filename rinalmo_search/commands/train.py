"""``rinalmo-search train``: train the homology head on a prepared split."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # prepare a split, then train a head on frozen RiNALMo features (config in YAML or TOML)
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out data/split
  rinalmo-search train --config train.yaml

  # a minimal train.yaml (relative paths are read from the config file's folder):
  #   split_dir: data/split
  #   output_dir: runs/head
  #   features: {extractor: rinalmo, options: {checkpoint: giga}}
  #   sampler: {families_per_batch: 256, per_family: 8, hard_negatives: 2}
  #   epochs: 20

  # a shipped config on your own split and output folder
  rinalmo-search train --config training/configs/kmer4-cpu.toml --split-dir data/split \\
      --output-dir runs/kmer4

  # run it again after a kill: it resumes from runs/head/checkpoint-last.pt
  rinalmo-search train --config train.yaml

  # two processes with DDP (gloo on CPU, NCCL on GPUs)
  torchrun --nproc_per_node 2 -m rinalmo_search train --config train.yaml

  # the shipped compact-kmer model, retrained (its split: data prepare --mmseqs-k 0)
  rinalmo-search train --config training/configs/compact-kmer.toml --split-dir data/split \
      --output-dir runs/compact-kmer

outputs (in output_dir): metrics.tsv (per epoch: loss, val_loss, val_map, val_top1),
checkpoint-last.pt (resume state), model.pt (lowest validation loss; config and split inside).
A config with kind = "compact" trains the compact model instead: model.npz (best validation
stage-1 AP over steps and view mixes) and validation.json (the table it chose from).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    from rinalmo_search.cli import HelpFormatter

    parser = subparsers.add_parser(
        "train",
        help="train the homology head (supervised contrastive, clan-aware batches)",
        description=(
            "Train the homology head on cached pooled features of a split written by "
            "'rinalmo-search data prepare': N families x K sequences per batch plus clan-mates "
            "as hard negatives, supervised contrastive loss, AdamW with warm-up and cosine decay. "
            "Resumes from the output folder's last checkpoint; runs under torchrun for DDP."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", required=True, help="training config (.yaml, .yml or .toml)")
    parser.add_argument(
        "--output-dir", default=None, help="override the config's output_dir (relative to here)"
    )
    parser.add_argument(
        "--split-dir", default=None,
        help="override the config's split_dir (relative to here): the 'data prepare' folder",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument(
        "--restart", action="store_true",
        help="ignore and replace an existing checkpoint in the output folder",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``train``."""
    from rinalmo_search.training.config import CompactTrainConfig, load_config

    overrides: dict[str, object] = {"epochs": args.epochs}
    if args.output_dir:
        overrides["output_dir"] = str(Path(args.output_dir).resolve())
    if args.split_dir:
        overrides["split_dir"] = str(Path(args.split_dir).resolve())
    if args.no_progress:
        overrides["progress"] = False
    config = load_config(args.config, **overrides)
    if isinstance(config, CompactTrainConfig):
        from rinalmo_search.training.compact import train_compact

        compact = train_compact(config)
        log.info("done: validation AP %.4f at learned weight %.2f; model %s",
                 compact.validation_ap, compact.learned_weight, compact.model_path)
        return 0
    from rinalmo_search.training.trainer import train

    result = train(config, restart=args.restart)
    if result.history:
        last = result.history[-1]
        log.info(
            "done: %d epochs, best epoch %d; last val_loss %.4f val_map %.4f; model %s",
            len(result.history) - 1, result.best_epoch, last["val_loss"], last["val_map"],
            result.model_path,
        )
    return 0
