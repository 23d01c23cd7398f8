"""What a model was trained on; evaluating a frozen-backbone head without rerunning the backbone.

Two things an evaluation must get right about the model it scores:

* **No leakage.** A model trained on a different split may have seen this split's test
  families. :func:`split_warnings` compares the training split recorded in the model file
  (its fingerprint, and its training families when the file lists them) with the evaluated
  split and says what it finds; the evaluation report carries the warnings.
* **One backbone pass.** A head trained on a frozen RiNALMo backbone was trained on pooled
  features the trainer cached (:class:`rinalmo_search.training.features.FeatureCache`, keyed
  by sequence hash). :func:`cached_head_embedder` embeds through that same cache, so the
  backbone runs at most once per sequence across training and evaluation; features it lacks
  are computed by the same extractor and added.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rinalmo_search.embedder.base import Embedder
from rinalmo_search.errors import ConfigError, InferenceError

from .split import RetrievalSet

log = logging.getLogger(__name__)

#: Largest difference allowed between the rebuilt feature extractor and the model file's own
#: backbone on the probe sequences (float32 rounding of the same computation).
PROBE_TOLERANCE = 1e-4
PROBE_SEQUENCES = ("GGGAAACUUCGGUUUCCCAGCUAGCUAGCUAGGAUCC", "ACGUACGUUUAGCCGAUAGCN")


def model_path(name: str) -> Path | None:
    """The file behind a model name (a registry name or a path), or None when there is none."""
    from rinalmo_search.embedder.registry import DEFAULT_MODEL, MODELS

    if name == DEFAULT_MODEL:
        from rinalmo_search.embedder.compact import DEFAULT_WEIGHTS

        return DEFAULT_WEIGHTS
    if name in MODELS:
        return None
    path = Path(name).expanduser()
    return path if path.is_file() else None


def model_metadata(name: str) -> dict[str, Any]:
    """The free-form ``metadata`` section of a model's file (empty when it has none)."""
    import torch

    from rinalmo_search.embedder.compact import is_compact_file, load_compact

    path = model_path(name)
    if path is None:
        return {}
    if is_compact_file(path):
        return dict(load_compact(path).metadata)
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise ConfigError(f"{path}: not a readable model file ({error})") from None
    metadata = payload.get("metadata") if isinstance(payload, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}


def training_split(metadata: dict[str, Any]) -> tuple[str, list[str] | None]:
    """The training split a model file records: (fingerprint or its prefix, training families).

    Trainer model files record ``{"fingerprint": ..., "families": {"train": [...]}}``; compact
    model files record ``"PATH (FINGERPRINT12)"``. Either part is empty/None when unknown.
    """
    split = metadata.get("split")
    if isinstance(split, dict):
        families = (split.get("families") or {}).get("train")
        return str(split.get("fingerprint") or ""), list(families) if families else None
    if isinstance(split, str) and split.endswith(")") and "(" in split:
        return split.rsplit("(", 1)[1].rstrip(")").strip(), None
    return "", None


def split_warnings(name: str, split: RetrievalSet) -> list[str]:
    """Reasons to distrust an evaluation of model ``name`` on ``split`` (empty when none).

    A warning is given when the model's training families include test families of the split,
    or, when the model does not list its families, when its training split's fingerprint
    differs from this split's.
    """
    fingerprint, train_families = training_split(model_metadata(name))
    test_families = set(split.families("test"))
    if train_families is not None:
        seen = sorted(test_families & set(train_families))
        if seen:
            return [f"{name} was trained on {len(seen)} of this split's {len(test_families)} "
                    f"test families (first {seen[0]}): its scores on them are not held-out"]
        return []
    if fingerprint and split.fingerprint and not split.fingerprint.startswith(fingerprint):
        return [f"{name} was trained on split {fingerprint[:12]}, not this one "
                f"({split.fingerprint[:12]}): its training families may include this split's "
                f"test families"]
    return []


def cached_head_embedder(name: str, cache_root: str | Path, split: RetrievalSet) -> Embedder | None:
    """An embedder for a head trained on frozen RiNALMo features, reading the feature cache.

    Arguments:
        name: model name or path; only model files with a RiNALMo backbone and a head whose
            metadata describe the trainer's feature extractor qualify.
        cache_root: the trainer's feature cache root (``features.cache_dir``; by default the
            split folder's ``features/``).
        split: the evaluated split (its fingerprint names the cached dataset, as in training).

    Returns:
        The embedder, or None when ``name`` is not such a model (embed it the usual way).

    Raises:
        ConfigError: the split has no fingerprint (not written by ``data prepare``).
        InferenceError: the rebuilt extractor does not reproduce the model file's backbone.
    """
    from rinalmo_search.embedder.features import FeatureHeadEmbedder
    from rinalmo_search.embedder.local import TorchEmbedder
    from rinalmo_search.embedder.model_file import load_model_file
    from rinalmo_search.training.features import (
        CachedFeatures,
        FeatureCache,
        build_extractor,
        split_dataset,
    )

    path = model_path(name)
    if path is None or path.suffix != ".pt":
        return None
    try:
        model_file = load_model_file(path)
    except InferenceError:
        return None  # another format (e.g. a compact model): no backbone features to cache
    description = model_file.metadata.get("features") or {}
    if (model_file.backbone_config is None or model_file.head_config is None
            or description.get("kind") != "rinalmo"):
        return None
    if not split.fingerprint:
        raise ConfigError(f"{split.source}: a feature cache needs a split written by "
                          "'rinalmo-search data prepare' (its fingerprint names the cache)")
    options = ({"checkpoint": description["checkpoint"]} if description.get("checkpoint")
               else {"preset": description.get("preset", "micro"),
                     "seed": int(description.get("seed") or 0)})
    extractor = build_extractor("rinalmo", **options)
    reference = TorchEmbedder.from_model_file(path, progress=False)
    expected = reference.embed_features(list(PROBE_SEQUENCES))
    found = extractor.extract(list(PROBE_SEQUENCES))
    difference = float(np.abs(expected - found).max())
    if difference > PROBE_TOLERANCE:
        raise InferenceError(
            f"{path}: the cached extractor {extractor.name} does not reproduce the model "
            f"file's backbone (max abs difference {difference:.2e} > {PROBE_TOLERANCE})"
        )
    cache = FeatureCache(cache_root, extractor, split_dataset(split.fingerprint))
    log.info("%s: backbone features from %s (%d cached)", name, cache.folder, len(cache))
    return FeatureHeadEmbedder(CachedFeatures(cache), model_file.build_head(),
                               name=model_file.name, version=model_file.version)
