"""The training configuration: one YAML or TOML file, validated by pydantic.

Relative paths in the file are read relative to the file's own folder, so a config next to its
data works from any working directory. Example (YAML)::

    split_dir: data/split            # written by 'rinalmo-search data prepare'
    output_dir: runs/head-kmer4
    features: {extractor: kmer, options: {k: 4}}
    head: {hidden_dim: 256, num_blocks: 2, num_heads: 4, ffn_dim: 512, dropout: 0.1}
    sampler: {families_per_batch: 32, per_family: 4, hard_negatives: 2}
    epochs: 20
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rinalmo_search.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesConfig(_Section):
    """Which pooled features the head reads, and where they are cached.

    Attributes:
        extractor: ``rinalmo`` (frozen backbone) or ``kmer`` (composition).
        options: keyword options of the extractor (``checkpoint``, ``preset``, ``seed``,
            ``batch_size`` for rinalmo; ``k`` for kmer).
        cache_dir: feature cache root (default: ``SPLIT_DIR/features``).
    """

    extractor: Literal["rinalmo", "kmer"] = "rinalmo"
    options: dict[str, Any] = Field(default_factory=dict)
    cache_dir: Path | None = None


class HeadSection(_Section):
    """Shape of the homology head (``input_dim`` comes from the features)."""

    hidden_dim: int = Field(default=768, ge=1)
    output_dim: int = Field(default=512, ge=1)
    num_blocks: int = Field(default=6, ge=0)
    num_heads: int = Field(default=8, ge=1)
    ffn_dim: int = Field(default=3072, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


class SamplerConfig(_Section):
    """Batch composition: N families × K sequences, plus H clan-mates per family."""

    families_per_batch: int = Field(default=256, ge=1)
    per_family: int = Field(default=8, ge=2)
    hard_negatives: int = Field(default=2, ge=0)


class OptimConfig(_Section):
    """AdamW with linear warm-up over ``warmup_fraction`` of the steps, then cosine to zero."""

    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_fraction: float = Field(default=0.1, ge=0, le=1)
    grad_clip: float | None = Field(default=1.0, gt=0)


class LoraSection(_Section):
    """LoRA adapters on the head's linear layers (only the adapters train when enabled)."""

    enabled: bool = False
    r: int = Field(default=16, ge=1)
    alpha: float = Field(default=32.0, gt=0)
    targets: list[str] = Field(
        # not input_proj: HomologyHead.forward reads input_proj.weight, which LoRALinear lacks
        default_factory=lambda: ["qkv", "out_proj", "ffn.0", "ffn.3", "output_proj"]
    )


class TrainConfig(_Section):
    """Everything a training run needs; recorded inside the checkpoint and the model file.

    Attributes:
        split_dir: split folder from ``data prepare``.
        output_dir: where ``metrics.tsv``, ``checkpoint-last.pt`` and ``model.pt`` go.
        temperature: SupCon τ.
        epochs: passes over the training families.
        max_steps: stop after this many optimiser steps (None: all epochs).
        amp: ``auto`` = fp16 on CUDA, off on CPU; ``bf16`` works on both; ``off``.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda[:N]``.
        seed: seed of initialisation, sampling and dropout.
        init_from: a model file whose head initialises this one (fine-tuning, e.g. with LoRA).
        num_threads: torch CPU threads per process (None: torch's default).
        validation_sequences: at most this many validation sequences enter the retrieval
            metrics (a deterministic subset; all when None).
        name: model name written into the model file.
        version: model version written into the model file.
        progress: show progress bars.
    """

    split_dir: Path
    output_dir: Path
    features: FeaturesConfig = Field(default_factory=lambda: FeaturesConfig())
    head: HeadSection = Field(default_factory=lambda: HeadSection())
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig())
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig())
    lora: LoraSection = Field(default_factory=lambda: LoraSection())
    temperature: float = Field(default=0.1, gt=0)
    epochs: int = Field(default=10, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"
    device: str = "auto"
    seed: int = 0
    init_from: Path | None = None
    num_threads: int | None = Field(default=None, ge=1)
    validation_sequences: int | None = Field(default=4000, ge=2)
    name: str = "rinalmo-search-head"
    version: str = "1"
    progress: bool = True

    @model_validator(mode="after")
    def _head_shape(self) -> TrainConfig:
        if self.head.hidden_dim % self.head.num_heads:
            raise ValueError(
                f"head.hidden_dim {self.head.hidden_dim} is not divisible by head.num_heads "
                f"{self.head.num_heads}"
            )
        return self

    def resolve_paths(self, base: Path) -> TrainConfig:
        """A copy with relative paths made absolute against ``base``."""
        def fix(path: Path | None) -> Path | None:
            if path is None or path.is_absolute():
                return path
            return (base / path).resolve()

        update: dict[str, Any] = {
            "split_dir": fix(self.split_dir),
            "output_dir": fix(self.output_dir),
            "init_from": fix(self.init_from),
        }
        features = self.features.model_copy(update={"cache_dir": fix(self.features.cache_dir)})
        return self.model_copy(update={**update, "features": features})

    def plain(self) -> dict[str, Any]:
        """JSON-compatible dict (paths as strings)."""
        return json.loads(self.model_dump_json())

    def fingerprint(self) -> str:
        """SHA-256 of the settings that change the result (not progress bars or threads)."""
        values = self.plain()
        for key in ("progress", "num_threads", "output_dir"):
            values.pop(key, None)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


class CompactTrainConfig(_Section):
    """Training of the compact default model's learned view (``kind = "compact"``).

    Attributes:
        kind: selects this trainer (:mod:`rinalmo_search.training.compact`).
        split_dir: split folder from ``data prepare``.
        output_dir: where the model file and ``validation.json`` go.
        patterns: k-mer patterns of the features (``1`` = a position read, ``0`` = skipped).
        block_weights: weight of each pattern's block.
        learned_dim: dimensions of the learned view.
        sampler: batch composition (as the head trainer's).
        steps: optimiser steps.
        lr: AdamW learning rate (peak).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        temperature: SupCon τ.
        max_substitution: each copy's substitution rate is drawn from U(0, this).
        max_indel: each copy's insertion/deletion rate is drawn from U(0, this).
        eval_every: validate every this many steps (and at the last).
        eval_queries_per_family: validation queries per family (deterministic sample).
        mixes: learned-view weights scored at each validation; the best is kept.
        seed: seed of initialisation, sampling and augmentation.
        num_threads: torch CPU threads (1 makes the run reproducible to the bit).
        name: model name written into the model file.
        version: model version written into the model file.
        progress: accepted for the command's ``--no-progress`` (the log shows progress).
    """

    kind: Literal["compact"]
    split_dir: Path
    output_dir: Path
    patterns: list[str] = Field(
        default_factory=lambda: ["11111", "1101011", "11011", "1110111", "11010111"])
    block_weights: list[float] = Field(default_factory=lambda: [1.0] * 5)
    learned_dim: int = Field(default=128, ge=1)
    sampler: SamplerConfig = Field(
        default_factory=lambda: SamplerConfig(families_per_batch=64, per_family=4,
                                              hard_negatives=1))
    steps: int = Field(default=600, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_steps: int = Field(default=50, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    max_substitution: float = Field(default=0.25, ge=0, le=1)
    max_indel: float = Field(default=0.05, ge=0, le=1)
    eval_every: int = Field(default=300, ge=1)
    eval_queries_per_family: int = Field(default=8, ge=1)
    mixes: list[float] = Field(default_factory=lambda: [0.15, 0.25, 0.35, 0.5])
    seed: int = 0
    num_threads: int = Field(default=1, ge=1)
    name: str = "compact-kmer"
    version: str = "1"
    progress: bool = True

    @model_validator(mode="after")
    def _blocks(self) -> CompactTrainConfig:
        if len(self.block_weights) != len(self.patterns):
            raise ValueError(f"{len(self.block_weights)} block_weights for "
                             f"{len(self.patterns)} patterns (expected one per pattern)")
        if not all(0 < mix <= 1 for mix in self.mixes):
            raise ValueError(f"mixes {self.mixes} (expected weights in (0, 1])")
        return self

    def resolve_paths(self, base: Path) -> CompactTrainConfig:
        """A copy with relative paths made absolute against ``base``."""
        return self.model_copy(update={
            key: value if value.is_absolute() else (base / value).resolve()
            for key, value in (("split_dir", self.split_dir), ("output_dir", self.output_dir))
        })

    def plain(self) -> dict[str, Any]:
        """JSON-compatible dict (paths as strings)."""
        return json.loads(self.model_dump_json())


def load_config(path: str | Path, **overrides: Any) -> TrainConfig | CompactTrainConfig:
    """Read and validate a YAML (``.yaml``/``.yml``) or TOML (``.toml``) training config.

    A config with ``kind = "compact"`` is a :class:`CompactTrainConfig`; any other is a
    :class:`TrainConfig` (the homology head).

    Arguments:
        path: the config file.
        **overrides: top-level values replacing the file's (None values are ignored).

    Raises:
        ConfigError: unreadable file, bad syntax, or values that fail validation (the message
            lists each bad field with the value found).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"Cannot read training config {path} ({error.strerror})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            raise ConfigError(
                f"Unknown config format {path.suffix!r} of {path} (expected .yaml, .yml or .toml)"
            )
    except ConfigError:
        raise
    except Exception as error:  # yaml and tomllib raise their own error classes
        raise ConfigError(f"{path}: cannot parse ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(values)}")
    values.update({key: value for key, value in overrides.items() if value is not None})
    schema: type[TrainConfig] | type[CompactTrainConfig] = (
        CompactTrainConfig if values.get("kind") == "compact" else TrainConfig)
    try:
        config = schema.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '(top)'}: {item['msg']} "
            f"(found {item.get('input')!r})"
            for item in error.errors()
        )
        raise ConfigError(f"{path}: invalid training config: {problems}") from None
    return config.resolve_paths(path.parent.resolve())
