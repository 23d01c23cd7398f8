"""Models that turn RNA sequences into vectors, behind one :class:`Embedder` interface."""

from .base import Embedder, ModelInfo, l2_normalise
from .registry import DEFAULT_MODEL, MODELS, load_embedder

# torch-backed parts (rinalmo, pretrained, head, lora, model_file, local, export) are imported
# from their modules, so that the k-mer baseline never imports torch.
__all__ = ["DEFAULT_MODEL", "MODELS", "Embedder", "ModelInfo", "l2_normalise", "load_embedder"]
