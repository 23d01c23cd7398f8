"""Helpers of the Triton tests: random sequences, random-weight reference models, export."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from rinalmo_search.embedder.base import Embedder, ModelInfo

MODEL_NAME = "rinalmo_search"
MAX_LENGTH = 1024
EXTERNAL_URL = os.environ.get("TRITON_URL", "")


def random_sequences(count: int, low: int, high: int, seed: int) -> list[str]:
    """Random RNA of lengths in ``[low, high)``."""
    rng = np.random.default_rng(seed)
    return [
        "".join(rng.choice(list("ACGU"), size=int(rng.integers(low, high)))) for _ in range(count)
    ]


def build_reference(preset: str | None, seed: int) -> Embedder:
    """A :class:`TorchEmbedder` with random weights: RiNALMo ``preset`` (or a tiny custom one)."""
    from rinalmo_search.embedder.head import HeadConfig, HomologyHead
    from rinalmo_search.embedder.local import TorchEmbedder
    from rinalmo_search.embedder.rinalmo import RiNALMoConfig, build_model

    torch.manual_seed(seed)
    if preset is None:
        config = RiNALMoConfig(name="custom", embed_dim=40, num_blocks=2, num_heads=4, ffn_dim=96)
    else:
        config = RiNALMoConfig.preset(preset)
    backbone = build_model(config)
    head = HomologyHead(HeadConfig(input_dim=config.embed_dim, num_blocks=2))
    return TorchEmbedder(
        backbone, head, name=f"rinalmo-{config.name}-test", version=f"random-seed{seed}",
        threads=1, progress=False,
    )  # fmt: skip


def export_repository(embedder: Embedder, repository: Path, name: str = MODEL_NAME) -> Path:
    """Export ``embedder`` into ``repository/name`` the way ``rinalmo-search export`` does."""
    from rinalmo_search.embedder.export import export_torchscript
    from rinalmo_search.embedder.triton.repository import write_model_repository

    export_torchscript(embedder, repository / name / "1" / "model.pt")
    write_model_repository(repository, name, embedder.info, MAX_LENGTH)
    return repository


class TorchScriptEmbedder(Embedder):
    """Reference for an external server: runs its ``model.pt`` in this process."""

    def __init__(self, path: Path) -> None:
        self.module = torch.jit.load(str(path), map_location="cpu").eval()
        self._info = ModelInfo("external", "unknown", 0)

    @property
    def info(self):  # type: ignore[no-untyped-def]
        return self._info

    def embed(self, sequences):  # type: ignore[no-untyped-def]
        from rinalmo_search.embedder.alphabet import batch_encode

        rows = []
        with torch.inference_mode():
            for sequence in sequences:
                ids, mask = batch_encode([sequence])
                rows.append(self.module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
        return np.concatenate(rows).astype(np.float32)
