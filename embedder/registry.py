"""Model names the CLI accepts, and the one function that turns a name into an :class:`Embedder`.

Each entry maps a name to a factory taking keyword options; imports happen inside the factory so
that choosing the k-mer baseline never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rinalmo_search.errors import ConfigError

from .base import Embedder


def _kmer(**options: Any) -> Embedder:
    from .kmer import KmerEmbedder

    return KmerEmbedder(**options)


#: name → factory. The first entry is the default model.
MODELS: dict[str, Callable[..., Embedder]] = {
    "kmer": _kmer,
}

DEFAULT_MODEL = next(iter(MODELS))


def load_embedder(name: str = DEFAULT_MODEL, **options: Any) -> Embedder:
    """Build the embedder registered under ``name``.

    Arguments:
        name: a key of :data:`MODELS`.
        **options: passed to the model's factory.

    Raises:
        ConfigError: the name is unknown.
    """
    try:
        factory = MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"Unknown model {name!r} (known models: {known})") from None
    return factory(**options)
