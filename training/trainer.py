"""The head training loop: cached features → homology head, by supervised contrastive loss.

One process or several under ``torchrun`` (DDP; gloo on CPU, NCCL on CUDA). Each epoch the
clan-aware sampler deals disjoint batches to the ranks; every rank evaluates the same fixed
validation batches and retrieval set (cheap on cached features), and rank 0 writes:

* ``metrics.tsv``: one row per epoch (epoch 0 = the untrained head);
* ``checkpoint-last.pt``: everything needed to resume (head, optimiser, schedule, scaler,
  history), rewritten atomically after each epoch; a killed run resumes from it;
* ``model.pt``: the head of the epoch with the lowest validation loss, as a model file
  (:func:`rinalmo_search.embedder.model_file.save_model_file`) whose metadata hold the config,
  the split and the metrics.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.evaluation.metrics import leave_one_out_metrics

from .config import TrainConfig
from .features import FeatureCache, FeatureExtractor, build_extractor, split_dataset
from .loss import supervised_contrastive_loss
from .prepare import Split, load_split
from .sampler import ClanAwareBatchSampler

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint-last.pt"
MODEL_FILE = "model.pt"
METRICS = "metrics.tsv"
METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "val_loss", "val_map", "val_top1",
                  "seconds")


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        history: one dict per epoch (columns of ``metrics.tsv``), epoch 0 = untrained head.
        best_epoch: epoch with the lowest validation loss.
        model_path: the model file of that epoch (None on ranks other than 0).
        resumed_from: the epoch a resumed run continued after (None for a fresh run).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    model_path: Path | None = None
    resumed_from: int | None = None


@dataclass
class _Data:
    features: Tensor
    labels: Tensor
    families: list[str]
    clans: list[str]


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Invalid 'device' value: {config.device!r} (CUDA is not available)")
    return device


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off":
        return None
    if config.amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError("Invalid 'amp' value: 'fp16' needs a CUDA device (use bf16 or off)")
    return torch.float16 if config.amp == "fp16" else torch.bfloat16


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_dataset(
    split: Split, name: str, cache: FeatureCache, *, limit: int | None = None, seed: int = 0
) -> _Data:
    """Features, integer family labels and clans of one split's records.

    Arguments:
        split: the prepared split.
        name: ``train``, ``validation`` or ``test``.
        cache: the feature cache (already filled).
        limit: keep at most this many records (a deterministic subset, whole families first
            drawn at random from ``seed``).
        seed: seed of the subset.
    """
    records = split.records[name]
    if limit is not None and len(records) > limit:
        families = sorted({r.family for r in records})
        order = np.random.default_rng(seed).permutation(len(families))
        keep: set[str] = set()
        total = 0
        sizes = {f: 0 for f in families}
        for record in records:
            sizes[record.family] += 1
        for index in order:
            family = families[int(index)]
            if total + sizes[family] > limit and keep:
                continue
            keep.add(family)
            total += sizes[family]
        records = [r for r in records if r.family in keep]
    if not records:
        raise InputError(f"{split.folder}: the {name} split holds no sequences")
    features = torch.from_numpy(cache.get([r.sequence for r in records], progress=False))
    family_index = {f: i for i, f in enumerate(sorted({r.family for r in records}))}
    labels = torch.tensor([family_index[r.family] for r in records], dtype=torch.long)
    clans = [split.families[r.family].clan for r in records]
    return _Data(features, labels, [r.family for r in records], clans)


def _make_sampler(
    data: _Data, config: TrainConfig, *, rank: int, world: int, seed: int, families: int
) -> ClanAwareBatchSampler:
    clans = dict(zip(data.families, data.clans, strict=True))
    return ClanAwareBatchSampler(
        data.families, clans, families_per_batch=families,
        per_family=config.sampler.per_family, hard_negatives=config.sampler.hard_negatives,
        seed=seed, rank=rank, world_size=world,
    )


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@torch.no_grad()
def validate(
    head: nn.Module, data: _Data, batches: list[list[int]], *, temperature: float,
    device: torch.device, amp: torch.dtype | None,
) -> dict[str, float]:
    """Validation loss over fixed batches and leave-one-out retrieval over all of ``data``."""
    was_training = head.training
    head.eval()
    autocast = (
        torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    )
    losses = []
    with autocast:
        for batch in batches:
            index = torch.tensor(batch)
            embeddings = head(data.features[index].to(device))
            losses.append(float(supervised_contrastive_loss(
                embeddings.float(), data.labels[index].to(device), temperature=temperature
            )))
        vectors = torch.cat([
            head(data.features[start : start + 1024].to(device)).float().cpu()
            for start in range(0, len(data.labels), 1024)
        ])
    head.train(was_training)
    retrieval = leave_one_out_metrics(vectors.numpy(), data.families, data.clans)
    return {
        "val_loss": float(np.mean(losses)) if losses else float("nan"),
        "val_map": retrieval["map"],
        "val_top1": retrieval["top1"],
    }


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    from rinalmo_search.seqio import atomic_write

    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def _write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    from rinalmo_search.seqio import atomic_write

    with atomic_write(path) as handle:
        handle.write("\t".join(METRIC_COLUMNS) + "\n")
        for row in history:
            handle.write("\t".join(
                str(int(row[c])) if c in ("epoch", "step") else f"{row[c]:.6g}"
                for c in METRIC_COLUMNS
            ) + "\n")


def _save_model(
    path: Path, head: nn.Module, extractor: FeatureExtractor, config: TrainConfig, split: Split,
    history: list[dict[str, float]], best_epoch: int,
) -> None:
    from rinalmo_search.embedder.lora import has_lora, merge_lora
    from rinalmo_search.embedder.model_file import save_model_file

    head = copy.deepcopy(head).cpu().float().eval()
    if has_lora(head):
        head = merge_lora(head)
    backbone: Any = None
    source: str | None = None
    features: dict[str, Any] | None = None
    description = extractor.describe()
    if description.get("kind") == "rinalmo":
        if description.get("checkpoint"):
            backbone = extractor.backbone.config  # type: ignore[attr-defined]
            source = str(description["checkpoint"])
        else:  # random weights exist nowhere else: store them
            backbone = extractor.backbone  # type: ignore[attr-defined]
    else:  # backbone-free features: the model file names the extractor, and search reruns it
        features = description
    metadata = {
        "training": config.plain(),
        "config_fingerprint": config.fingerprint(),
        "features": description,
        "split": {
            "dir": str(split.folder),
            "fingerprint": split.fingerprint,
            "families": {n: sorted(f for f, s in split.family_split.items() if s == n)
                         for n in ("train", "validation", "test")},
        },
        "metrics": history,
        "best_epoch": best_epoch,
    }
    save_model_file(path, name=config.name, version=config.version, backbone=backbone,
                    head=head, backbone_source=source, metadata=metadata, features=features)


@dataclass
class _Run:
    """Where this process stands: its rank, device and precision, and the output folder."""

    rank: int
    world: int
    device: torch.device
    amp: torch.dtype | None
    out: Path

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class _Optimisation:
    """What steps the head: trainable parameters, AdamW, the schedule and the AMP scaler."""

    parameters: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    total_steps: int


@dataclass
class _Progress:
    """Training state that a checkpoint carries across a restart."""

    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 1
    step: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0


def _start(config: TrainConfig, *, restart: bool) -> _Run:
    """Threads, device, DDP process group and AMP; create the output folder (rank 0)."""
    rank, world = _distributed()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = _device(config)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    run = _Run(rank, world, device, _amp_dtype(config, device), config.output_dir)
    if run.main:
        run.out.mkdir(parents=True, exist_ok=True)
        if restart:
            (run.out / CHECKPOINT).unlink(missing_ok=True)
    return run


def _load_data(
    config: TrainConfig, split: Split, extractor: FeatureExtractor, run: _Run
) -> tuple[_Data, _Data]:
    """Fill the feature cache (rank 0; the others wait) and read the train/validation sets."""
    cache_root = config.features.cache_dir or (config.split_dir / "features")
    dataset = split_dataset(split.fingerprint)
    if run.main:
        cache = FeatureCache(cache_root, extractor, dataset)
        cache.fill([r.sequence for name in ("train", "validation") for r in split.records[name]],
                   progress=config.progress)
    if run.world > 1:
        torch.distributed.barrier()
    cache = FeatureCache(cache_root, extractor, dataset)
    train_data = build_dataset(split, "train", cache)
    val_data = build_dataset(split, "validation", cache, limit=config.validation_sequences,
                             seed=config.seed)
    return train_data, val_data


def _validation_batches(val_data: _Data, config: TrainConfig) -> list[list[int]]:
    """The fixed validation batches (same families-per-batch, capped by what validation has)."""
    val_families = sum(1 for n in Counter(val_data.families).values() if n >= 2)
    val_sampler = _make_sampler(
        val_data, config, rank=0, world=1, seed=config.seed + 1,
        families=max(1, min(config.sampler.families_per_batch, val_families)),
    )
    return val_sampler.epoch_batches(0)


def _build_head(config: TrainConfig, extractor: FeatureExtractor, device: torch.device
                ) -> nn.Module:
    """A seeded head of the config's shape, optionally initialised from a model file and
    wrapped with LoRA adapters."""
    torch.manual_seed(config.seed)
    from rinalmo_search.embedder.head import HeadConfig, HomologyHead

    head_config = HeadConfig(input_dim=extractor.dim, **config.head.model_dump())
    head: nn.Module = HomologyHead(head_config)
    if config.init_from is not None:
        from rinalmo_search.embedder.model_file import load_model_file

        source = load_model_file(config.init_from)
        if source.head_config is None or source.head_config.to_dict() != head_config.to_dict():
            raise ConfigError(
                f"{config.init_from}: head {source.head_config} does not match the config's "
                f"{head_config}"
            )
        head.load_state_dict(source.head_state or {}, strict=True)
    if config.lora.enabled:
        from rinalmo_search.embedder.lora import apply_lora

        apply_lora(head, r=config.lora.r, alpha=config.lora.alpha,
                   targets=config.lora.targets, freeze_base=True)
    return head.to(device)


def _optimisation(head: nn.Module, config: TrainConfig, run: _Run, steps_per_epoch: int
                  ) -> _Optimisation:
    """AdamW over the trainable parameters, warm-up + cosine over the run's steps."""
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    warmup = int(round(config.optim.warmup_fraction * total_steps))
    parameters = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.optim.lr, betas=config.optim.betas,
                                  weight_decay=config.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup)
    )
    scaler = torch.amp.GradScaler(run.device.type, enabled=run.amp == torch.float16)
    return _Optimisation(parameters, optimizer, scheduler, scaler, total_steps)


def _resume(path: Path, fingerprint: str, head: nn.Module, opt: _Optimisation, run: _Run
            ) -> _Progress | None:
    """Load ``checkpoint-last.pt`` into the head and optimiser; None when there is none.

    Raises:
        ConfigError: the checkpoint was written by another config.
    """
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["config_fingerprint"] != fingerprint:
        raise ConfigError(
            f"{path} was written by another training config; choose another "
            "output_dir or remove the checkpoint to start afresh"
        )
    head.load_state_dict(state["head"])
    opt.optimizer.load_state_dict(state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    opt.scaler.load_state_dict(state["scaler"])
    torch.random.set_rng_state(state["torch_rng"])
    log.log(logging.INFO if run.main else logging.DEBUG, "resuming %s after epoch %d (step %d)",
            run.out, state["epoch"], state["step"])
    return _Progress(state["history"], state["epoch"] + 1, state["step"], state["best_loss"],
                     state["best_epoch"])


def _train_epoch(
    model: nn.Module, data: _Data, batches: ClanAwareBatchSampler, opt: _Optimisation,
    config: TrainConfig, run: _Run, *, step: int, desc: str,
) -> tuple[float, int]:
    """One pass over the sampler's batches (stops at the run's last step).

    Returns:
        The mean training loss over processes, and the step count after the epoch.
    """
    autocast = (
        (lambda: torch.autocast(run.device.type, dtype=run.amp)) if run.amp is not None
        else contextlib.nullcontext
    )
    model.train()
    losses = []
    bar = tqdm(batches, desc=desc, unit="batch", leave=False,
               disable=not (run.main and config.progress))
    for batch in bar:
        if step >= opt.total_steps:
            break
        index = torch.tensor(batch)
        features = data.features[index].to(run.device, non_blocking=True)
        labels = data.labels[index].to(run.device)
        with autocast():
            embeddings = model(features)
        loss = supervised_contrastive_loss(embeddings.float(), labels,
                                           temperature=config.temperature)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        if config.optim.grad_clip:
            opt.scaler.unscale_(opt.optimizer)
            nn.utils.clip_grad_norm_(opt.parameters, config.optim.grad_clip)
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        step += 1
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    train_loss = torch.tensor(float(np.mean(losses)) if losses else float("nan"))
    if run.world > 1:
        torch.distributed.all_reduce(train_loss)
        train_loss /= run.world
    return float(train_loss), step


def _checkpoint_state(
    config: TrainConfig, split: Split, head: nn.Module, opt: _Optimisation,
    progress: _Progress, epoch: int,
) -> dict[str, Any]:
    return {
        "config_fingerprint": config.fingerprint(),
        "config": config.plain(),
        "split_fingerprint": split.fingerprint,
        "head": head.state_dict(),
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "scaler": opt.scaler.state_dict(),
        "torch_rng": torch.random.get_rng_state(),
        "history": progress.history,
        "epoch": epoch,
        "step": progress.step,
        "best_loss": progress.best_loss,
        "best_epoch": progress.best_epoch,
    }


def train(config: TrainConfig, *, restart: bool = False) -> TrainResult:
    """Train the homology head as ``config`` says, resuming from ``checkpoint-last.pt`` if the
    output folder holds one of the same config.

    Arguments:
        config: the validated training config.
        restart: discard an existing checkpoint instead of resuming from it.

    Raises:
        ConfigError: inconsistent settings, or a checkpoint of another config in the output
            folder.
        InputError: an unreadable or empty split.
    """
    run = _start(config, restart=restart)
    split = load_split(config.split_dir)
    extractor = build_extractor(config.features.extractor, **config.features.options)
    train_data, val_data = _load_data(config, split, extractor, run)
    sampler = _make_sampler(train_data, config, rank=run.rank, world=run.world, seed=config.seed,
                            families=config.sampler.families_per_batch)
    val_batches = _validation_batches(val_data, config)
    steps_per_epoch = len(sampler)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"No training batch: {len(sampler.eligible)} families, {run.world} processes and "
            f"{config.sampler.families_per_batch} families per batch"
        )
    head = _build_head(config, extractor, run.device)
    opt = _optimisation(head, config, run, steps_per_epoch)
    result = TrainResult()
    checkpoint_path = run.out / CHECKPOINT
    progress = _resume(checkpoint_path, config.fingerprint(), head, opt, run)
    if progress is None:
        progress = _Progress()
    else:
        result.resumed_from = progress.start_epoch - 1
    model: nn.Module = head
    if run.world > 1:
        model = nn.parallel.DistributedDataParallel(
            head, device_ids=[run.device.index] if run.device.type == "cuda" else None
        )

    def check() -> dict[str, float]:
        return validate(head, val_data, val_batches, temperature=config.temperature,
                        device=run.device, amp=run.amp)

    if not progress.history:
        started = time.perf_counter()
        metrics = check()
        progress.history.append({"epoch": 0, "step": 0, "lr": 0.0, "train_loss": float("nan"),
                                 **metrics, "seconds": time.perf_counter() - started})
        if run.main:
            log.info("untrained head: val_loss %.4f val_map %.4f val_top1 %.4f",
                     metrics["val_loss"], metrics["val_map"], metrics["val_top1"])
            _write_metrics(run.out / METRICS, progress.history)

    last_epoch = math.ceil(opt.total_steps / steps_per_epoch)
    for epoch in range(progress.start_epoch, last_epoch + 1):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        train_loss, progress.step = _train_epoch(
            model, train_data, sampler, opt, config, run, step=progress.step,
            desc=f"epoch {epoch}/{last_epoch}",
        )
        metrics = check()
        row: dict[str, float] = {
            "epoch": epoch, "step": progress.step, "lr": float(opt.scheduler.get_last_lr()[0]),
            "train_loss": train_loss, **metrics, "seconds": time.perf_counter() - started,
        }
        progress.history.append(row)
        log.log(
            logging.INFO if run.main else logging.DEBUG,
            "epoch %d/%d: loss %.4f val_loss %.4f val_map %.4f val_top1 %.4f (%.1f s)",
            epoch, last_epoch, row["train_loss"], row["val_loss"], row["val_map"],
            row["val_top1"], row["seconds"],
        )
        improved = metrics["val_loss"] < progress.best_loss
        if improved:
            progress.best_loss, progress.best_epoch = metrics["val_loss"], epoch
        if run.main:
            _write_metrics(run.out / METRICS, progress.history)
            if improved:
                _save_model(run.out / MODEL_FILE, head, extractor, config, split,
                            progress.history, epoch)
            _save_checkpoint(checkpoint_path,
                             _checkpoint_state(config, split, head, opt, progress, epoch))
        if run.world > 1:
            torch.distributed.barrier()
        if progress.step >= opt.total_steps:
            break

    result.history = progress.history
    result.best_epoch = progress.best_epoch
    result.model_path = run.out / MODEL_FILE if run.main else None
    if run.main and progress.best_epoch == 0:  # every validation loss was NaN, or no epoch ran
        log.warning("no epoch gave a finite validation loss; no model.pt written")
        result.model_path = None
    if run.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result
