"""Our own model file: one ``torch.save`` dict holding everything a trained embedder needs.

Layout (format tag ``rinalmo-search-model``, ``format_version`` 1 or 2)::

    {"format": "rinalmo-search-model", "format_version": 1 | 2,
     "name": str, "version": str,
     "backbone": {"config": RiNALMoConfig dict, "state_dict": {...} | None, "source": str | None}
                 | None,                    # None only in version 2, with "features"
     "features": {"kind": "kmer", "k": 4, "name": "kmer4", "dim": 256} | None,   # version 2
     "head": {"config": HeadConfig dict, "state_dict": {...}} | None,
     "metadata": {...}}                     # free: training config, split, metrics, ...

A *backbone-free* model (version 2) has no backbone: its ``features`` section names a feature
extractor of :mod:`.features` and its parameters (:meth:`~.features.FeatureExtractor.describe`),
and the head maps those features. Files with a backbone are still written as version 1, so
readers of version 1 keep reading them.

A *feature-only* model stores no backbone weights (``state_dict`` None) and names in
``source`` where they come from: a published name (``giga``) or a checkpoint path. Backbone
weights are stored in the official key layout (LoRA merged), so they load like a released file.
Everything is plain containers and tensors, so loading uses ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rinalmo_search.errors import InferenceError
from rinalmo_search.seqio import atomic_write

from .head import HeadConfig, HomologyHead
from .lora import has_lora, merge_lora
from .rinalmo import RiNALMo, RiNALMoConfig

FORMAT = "rinalmo-search-model"
FORMAT_VERSION = 2


@dataclass
class ModelFile:
    """The contents of a model file.

    Attributes:
        name: model name (stored with every vector).
        version: model version.
        backbone_config: RiNALMo shape, or None for a backbone-free model (see ``features``).
        backbone_state: backbone weights (official layout), or None for feature-only models.
        backbone_source: where backbone weights come from when not stored (published name or
            checkpoint path).
        head_config: head shape, or None for a backbone-only model (features as embedding).
        head_state: head weights.
        features: for a backbone-free model, the feature extractor's description
            (``{"kind": "kmer", "k": 4, ...}``); None when a RiNALMo backbone makes the features.
        metadata: free-form information (training config, data split, metrics).
    """

    name: str
    version: str
    backbone_config: RiNALMoConfig | None
    backbone_state: dict[str, Tensor] | None = None
    backbone_source: str | None = None
    head_config: HeadConfig | None = None
    head_state: dict[str, Tensor] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] | None = None

    def build_head(self) -> HomologyHead | None:
        """The head with its weights, in eval mode (None when the file has no head)."""
        if self.head_config is None:
            return None
        head = HomologyHead(self.head_config)
        if self.head_state is not None:
            head.load_state_dict(self.head_state, strict=True)
        return head.eval()


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_model_file(
    path: str | Path,
    *,
    name: str,
    version: str,
    backbone: RiNALMo | RiNALMoConfig | None,
    head: HomologyHead | None,
    backbone_source: str | None = None,
    metadata: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
) -> Path:
    """Write a model file (atomically: temp file then rename).

    Arguments:
        path: target ``.pt`` file.
        name: model name.
        version: model version.
        backbone: a RiNALMo module (its weights are stored, LoRA merged on a copy) or only its
            config (feature-only model: set ``backbone_source``), or None for a backbone-free
            model (set ``features``).
        head: the trained head, or None.
        backbone_source: published weights name or checkpoint path for feature-only models.
        metadata: free-form, ``torch.save``-able plain data (no custom classes).
        features: description of the backbone-free feature extractor the head was trained
            on (:meth:`.features.FeatureExtractor.describe`, e.g. ``{"kind": "kmer", "k": 4}``).

    Returns:
        The path written.

    Raises:
        ValueError: a feature-only model without ``backbone_source``; both or neither of
            ``backbone`` and ``features``; an unknown extractor, or a head whose input width
            is not the features' width.
    """
    if (backbone is None) == (features is None):
        raise ValueError(
            "A model file needs exactly one of 'backbone' (RiNALMo features) and 'features' "
            f"(backbone-free extractor); found backbone={type(backbone).__name__}, "
            f"features={features!r}"
        )
    config: RiNALMoConfig | None
    backbone_state: dict[str, Tensor] | None = None
    if features is not None:
        from .features import extractor_from_description

        try:
            extractor = extractor_from_description(features)
        except InferenceError as error:
            raise ValueError(str(error)) from None
        if head is not None and head.config.input_dim != extractor.dim:
            raise ValueError(
                f"The head expects {head.config.input_dim}-d input, but the {extractor.name} "
                f"features are {extractor.dim}-d"
            )
        features = {**features, **extractor.describe()}
        config = None
    elif isinstance(backbone, RiNALMo):
        config = backbone.config
        module: nn.Module = backbone
        if has_lora(backbone):
            import copy

            module = merge_lora(copy.deepcopy(backbone))
        backbone_state = _cpu_state(module)
    else:
        assert backbone is not None
        config = backbone
        if not backbone_source:
            raise ValueError("A feature-only model file needs 'backbone_source' (name or path)")
    payload = {
        "format": FORMAT,
        "format_version": 1 if features is None else FORMAT_VERSION,
        "name": name,
        "version": version,
        "backbone": None if config is None else {
            "config": config.to_dict(),
            "state_dict": backbone_state,
            "source": backbone_source,
        },
        "head": None if head is None else {
            "config": head.config.to_dict(),
            "state_dict": _cpu_state(head),
        },
        "metadata": dict(metadata or {}),
    }
    if features is not None:
        payload["features"] = dict(features)
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)
    return path


def update_model_metadata(path: str | Path, entries: dict[str, Any]) -> None:
    """Add or replace top-level metadata entries of a model file (e.g. the re-ranker's
    calibration), rewriting it atomically; weights are untouched.

    Raises:
        InferenceError: unreadable, or not this format.
    """
    load_model_file(path)  # checks the format
    path = Path(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["metadata"] = {**dict(payload.get("metadata") or {}), **entries}
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_model_file(path: str | Path) -> ModelFile:
    """Read a model file.

    Raises:
        InferenceError: unreadable, not this format, or a newer format version.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise InferenceError(f"Model file not found: {path}") from None
    except Exception as error:  # torch raises many kinds for a bad file
        raise InferenceError(f"Cannot read model file {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InferenceError(
            f"{path} is not a RiNALMo-Search model file (format tag {found!r}, expected "
            f"{FORMAT!r}; an official RiNALMo checkpoint goes to --checkpoint instead)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InferenceError(
            f"{path} has model-file format version {version!r} (this program reads up to "
            f"{FORMAT_VERSION})"
        )
    backbone = payload.get("backbone")
    features = payload.get("features")
    if (backbone is None) == (features is None):
        raise InferenceError(
            f"{path} must hold exactly one of a 'backbone' and a 'features' section (found "
            f"backbone: {'yes' if backbone is not None else 'no'}, features: "
            f"{'yes' if features is not None else 'no'})"
        )
    head = payload.get("head")
    return ModelFile(
        name=str(payload["name"]),
        version=str(payload["version"]),
        backbone_config=None if backbone is None else RiNALMoConfig.from_dict(
            dict(backbone["config"])),
        backbone_state=None if backbone is None else backbone.get("state_dict"),
        backbone_source=None if backbone is None else backbone.get("source"),
        head_config=None if head is None else HeadConfig.from_dict(dict(head["config"])),
        head_state=None if head is None else head["state_dict"],
        metadata=dict(payload.get("metadata") or {}),
        features=None if features is None else dict(features),
    )
