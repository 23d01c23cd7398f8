"""Model names the CLI accepts, and the one function that turns a name into an :class:`Embedder`.

Each entry maps a name to a factory taking keyword options; imports happen inside the factory so
that choosing the k-mer baseline never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rinalmo_search.errors import ConfigError

from .base import Embedder


def _kmer(**options: Any) -> Embedder:
    """Baseline: 5-mer spectrum, randomly projected to 512-d (no training, no weights)."""
    from .kmer import KmerEmbedder

    return KmerEmbedder(**options)


def _compact(**options: Any) -> Embedder:
    """The shipped compact model (k-mer features + learned projection; model card beside it)."""
    from .compact import load_compact

    return load_compact(**options)


def _rinalmo_mean(weights: str) -> Callable[..., Embedder]:
    """Mean-pooled official RiNALMo features (no head); needs 'weights download' first."""

    def factory(**options: Any) -> Embedder:
        from .local import TorchEmbedder

        return TorchEmbedder.from_checkpoint(weights, **options)

    factory.__doc__ = f"RiNALMo {weights}: mean-pooled official features, no head (needs weights)"
    return factory


#: Format tag of compact model files (``.npz``, :mod:`.compact`); torch model files (``.pt``)
#: are read by :mod:`.model_file` (RiNALMo backbone and/or homology head).
COMPACT_FORMAT = "rinalmo-search compact 1"


#: name → factory. The first entry is the default model.
MODELS: dict[str, Callable[..., Embedder]] = {
    "compact-kmer": _compact,
    "kmer": _kmer,
    "rinalmo-giga-mean": _rinalmo_mean("giga"),
    "rinalmo-mega-mean": _rinalmo_mean("mega"),
    "rinalmo-micro-mean": _rinalmo_mean("micro"),
}

DEFAULT_MODEL = next(iter(MODELS))


def load_embedder(name: str = DEFAULT_MODEL, **options: Any) -> Embedder:
    """Build the embedder registered under ``name``, or the one stored in a model file.

    Arguments:
        name: a key of :data:`MODELS`, or the path of a RiNALMo-Search model file (``.pt``
            for torch models, ``.npz`` for compact models).
        **options: passed to the model's factory (for model files: ``threads``,
            ``batch_size``, ``checkpoint``, ... of ``TorchEmbedder``).

    Raises:
        ConfigError: the name is unknown and no such file exists.
    """
    factory = MODELS.get(name)
    if factory is not None:
        return factory(**options)
    path = Path(name).expanduser()
    if name.endswith((".pt", ".npz")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"Model file not found: {name}")
        from .compact import is_compact_file, load_compact

        if is_compact_file(path):  # read without torch
            return load_compact(path)
        from .local import embedder_from_model_file

        return embedder_from_model_file(path, **options)
    known = ", ".join(sorted(MODELS))
    raise ConfigError(
        f"Unknown model {name!r} (known models: {known}; or the path of a .pt or .npz model file)"
    )
