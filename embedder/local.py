"""Local (in-process) PyTorch embedder: RiNALMo backbone + residue mean pooling + homology head.

:func:`embedder_from_model_file` opens any model file of :mod:`.model_file`: a RiNALMo one as a
:class:`TorchEmbedder`, a backbone-free one (k-mer features + head) as a
:class:`~.features.FeatureHeadEmbedder`.

Sequences are grouped into length buckets (similar lengths share a batch, so little padding is
computed), run without gradients, and returned in input order. Padding never changes a vector:
attention masks padded keys, pooling skips them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm import tqdm

from rinalmo_search.errors import InferenceError

from .alphabet import batch_encode, length_batches
from .base import Embedder, ModelInfo
from .head import HomologyHead
from .pooling import mean_pool, residue_mask
from .rinalmo import RiNALMo

log = logging.getLogger(__name__)


class EmbeddingModel(nn.Module):
    """Token ids + attention mask → unit embeddings; the module that is exported to TorchScript.

    Arguments:
        backbone: RiNALMo.
        head: homology head (pooled or residue-attending, per its config).
    """

    def __init__(self, backbone: RiNALMo, head: HomologyHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.attend_over_residues = head.config.attend_over_residues

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``(B, L)`` int64 ids and mask (1 = real token) → ``(B, out_dim)`` float32 unit rows."""
        hidden = self.backbone(input_ids, attention_mask)
        mask = residue_mask(input_ids, attention_mask)
        if self.attend_over_residues:
            return self.head.forward_tokens(hidden, mask)
        return self.head(mean_pool(hidden, mask))


class FeatureModel(nn.Module):
    """Token ids + attention mask → mean-pooled backbone features (optionally L2-normalised)."""

    def __init__(self, backbone: RiNALMo, normalise: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.normalise = normalise

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``(B, L)`` ids and mask → ``(B, d)`` float32 pooled features."""
        hidden = self.backbone(input_ids, attention_mask)
        pooled = mean_pool(hidden, residue_mask(input_ids, attention_mask))
        if self.normalise:
            return F.normalize(pooled, dim=-1)
        return pooled


class TorchEmbedder(Embedder):
    """RiNALMo + pooling + homology head, run locally with PyTorch.

    Without a head, :meth:`embed` returns L2-normalised pooled backbone features.

    Arguments:
        backbone: the RiNALMo encoder.
        head: the homology head, or None.
        name: model name for :attr:`info`.
        version: model version for :attr:`info`.
        threads: ``torch.set_num_threads`` value (process-wide); None leaves it.
        batch_size: most sequences per forward pass.
        max_tokens: most padded tokens per forward pass (bounds memory on long sequences).
        device: torch device.
        dtype: backbone dtype (float32 exact; bfloat16 faster, approximate). Pooling and the
            head's output are float32 either way.
        progress: show a progress bar (None: only on a terminal).
    """

    def __init__(
        self,
        backbone: RiNALMo,
        head: HomologyHead | None = None,
        *,
        name: str | None = None,
        version: str = "1",
        threads: int | None = None,
        batch_size: int = 8,
        max_tokens: int = 8192,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        progress: bool | None = None,
    ) -> None:
        if threads is not None:
            if threads < 1:
                raise ValueError(f"Invalid 'threads' value: {threads} (expected >= 1)")
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.progress = progress
        backbone = backbone.to(device=self.device, dtype=dtype).eval()
        self.features_model = FeatureModel(backbone).eval()
        self.head = None if head is None else head.to(self.device).eval()
        self.model: nn.Module
        if self.head is not None:
            self.model = EmbeddingModel(backbone, self.head).eval()
            dim = self.head.config.output_dim
        else:
            self.model = FeatureModel(backbone, normalise=True).eval()
            dim = backbone.config.embed_dim
        self._info = ModelInfo(
            name=name or f"rinalmo-{backbone.config.name}" + ("" if head else "-mean"),
            version=version,
            dim=dim,
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def backbone(self) -> RiNALMo:
        """The RiNALMo encoder."""
        return self.features_model.backbone

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        """Unit embeddings ``(n, info.dim)`` float32, in input order."""
        return self._run(self.model, sequences, self._info.dim)

    def embed_features(self, sequences: Sequence[str]) -> np.ndarray:
        """Mean-pooled backbone features ``(n, d)`` float32 (not normalised), in input order."""
        return self._run(self.features_model, sequences, self.backbone.config.embed_dim)

    def _run(self, model: nn.Module, sequences: Sequence[str], dim: int) -> np.ndarray:
        out = np.zeros((len(sequences), dim), dtype=np.float32)
        if not sequences:
            return out
        lengths = [len(seq) for seq in sequences]
        batches = list(length_batches(lengths, batch_size=self.batch_size,
                                      max_tokens=self.max_tokens))
        bar = tqdm(total=len(sequences), unit="seq", desc="embedding", disable=(
            not self.progress if self.progress is not None else None), leave=False)
        try:
            with torch.inference_mode(), bar:
                for batch in batches:
                    ids, mask = batch_encode([sequences[i] for i in batch])
                    vectors = model(
                        torch.from_numpy(ids).to(self.device),
                        torch.from_numpy(mask).to(self.device),
                    )
                    out[batch] = vectors.float().cpu().numpy()
                    bar.update(len(batch))
        except RuntimeError as error:
            raise InferenceError(f"RiNALMo inference failed: {error}") from error
        return out

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **options: object) -> TorchEmbedder:
        """Backbone-only embedder from an official checkpoint (path or downloaded name)."""
        from .pretrained import load_backbone

        return cls(load_backbone(checkpoint), None, **options)  # type: ignore[arg-type]

    @classmethod
    def from_model_file(
        cls, path: str | Path, *, checkpoint: str | Path | None = None, **options: object
    ) -> TorchEmbedder:
        """Embedder from our model file.

        Arguments:
            path: the model file.
            checkpoint: official checkpoint for the backbone of a feature-only model file
                (default: the file's own ``backbone_source``).
            **options: passed to :class:`TorchEmbedder`.

        Raises:
            InferenceError: unreadable file, a backbone-free model file (open it with
                :func:`embedder_from_model_file`), or a backbone that cannot be found or does
                not match the head.
        """
        from .model_file import load_model_file
        from .pretrained import load_backbone

        model_file = load_model_file(path)
        if model_file.backbone_config is None:
            raise InferenceError(
                f"{path} has no RiNALMo backbone (its head maps "
                f"{(model_file.features or {}).get('name', 'backbone-free')} features), so it "
                "has no backbone features and cannot run as a RiNALMo TorchEmbedder; use it as "
                "a model (--model PATH, load_embedder(PATH))"
            )
        if checkpoint is not None:
            backbone = load_backbone(checkpoint)
        elif model_file.backbone_state is not None:
            backbone = load_backbone(
                model_file.backbone_state, config=model_file.backbone_config
            )
        elif model_file.backbone_source:
            backbone = load_backbone(model_file.backbone_source)
        else:
            raise InferenceError(f"{path} stores no backbone and names no backbone source")
        expected = model_file.backbone_config
        if (backbone.config.embed_dim, backbone.config.num_blocks) != (
            expected.embed_dim, expected.num_blocks
        ):
            raise InferenceError(
                f"Backbone RiNALMo-{backbone.config.name} (d={backbone.config.embed_dim}, "
                f"{backbone.config.num_blocks} blocks) does not match the model file's "
                f"(d={expected.embed_dim}, {expected.num_blocks} blocks)"
            )
        options.setdefault("name", model_file.name)
        options.setdefault("version", model_file.version)
        return cls(backbone, model_file.build_head(), **options)  # type: ignore[arg-type]


def embedder_from_model_file(path: str | Path, **options: object) -> Embedder:
    """The embedder a model file describes, whichever features it uses.

    Arguments:
        path: a :mod:`.model_file` model file.
        **options: for RiNALMo files, as :meth:`TorchEmbedder.from_model_file`; for
            backbone-free files, ``threads``, ``batch_size``, ``device`` and ``name``/``version``
            overrides (``progress`` and ``dtype`` are accepted and ignored: the features are
            cheap and computed in float32).

    Raises:
        InferenceError: unreadable file or unusable contents.
        ConfigError: an option a backbone-free model cannot take (``checkpoint``, ...).
    """
    from rinalmo_search.errors import ConfigError

    from .model_file import load_model_file

    model_file = load_model_file(path)
    if model_file.features is None:
        return TorchEmbedder.from_model_file(path, **options)  # type: ignore[arg-type]
    from .features import FeatureHeadEmbedder, extractor_from_description

    options = {k: v for k, v in options.items() if v is not None}
    options.pop("progress", None)
    options.pop("dtype", None)
    allowed = {"threads", "batch_size", "device", "name", "version"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{path} is a backbone-free model ({model_file.features.get('name')} features); it "
            f"does not take the option(s) {', '.join(unknown)} (accepted: "
            f"{', '.join(sorted(allowed))})"
        )
    options.setdefault("name", model_file.name)
    options.setdefault("version", model_file.version)
    return FeatureHeadEmbedder(
        extractor_from_description(model_file.features), model_file.build_head(),
        **options,  # type: ignore[arg-type]
    )
