"""Fixtures of the embedder tests: one torch thread, a small official-layout checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from embedder_testkit import random_model, save_official


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An official-layout checkpoint of a micro-width, 2-block random model."""
    path = tmp_path_factory.mktemp("ckpt") / "rinalmo_micro2_random.pt"
    return save_official(random_model("micro", 2), path, with_rotary=True)
