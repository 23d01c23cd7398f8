"""The shipped default model (compact-kmer), exported and served by a real tritonserver."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.embedder import load_embedder
from rinalmo_search.embedder.triton.client import TritonEmbedder
from rinalmo_search.embedder.triton.server import TritonServer
from triton_testkit import EXTERNAL_URL, MODEL_NAME, random_sequences

from rinalmo_search.cli import main

log = logging.getLogger(__name__)

# lengths over several buckets and past the recorded max_length (sent alone), corner cases
SEQUENCES = random_sequences(24, 8, 700, seed=7) + [
    "acguacgguucagc",
    "ACGTACGGTTCAGC",
    "ACGUNRYKM-ACGUACGUAC",
    "A",
    "ACGU",  # shorter than every pattern: the zero vector on both sides
    "GGGGAAAACCCCUUUUGGGGAAAACCCCUUUU" * 3,
    "ACGGUCA" * 700,  # 4,900 nt: longer than the exported max_length
]


@pytest.fixture(scope="module")
def compact_url(runnable: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tritonserver serving what ``rinalmo-search export --model compact-kmer`` writes."""
    if EXTERNAL_URL:
        pytest.skip("TRITON_URL is set: this test starts its own server for the compact model")
    repository = tmp_path_factory.mktemp("compact_repository")
    assert main(["-q", "export", "--model", "compact-kmer", "--repository", str(repository)]) == 0
    with TritonServer(repository, startup_timeout_s=240) as server:
        yield server.url


def test_served_default_model_matches_local(compact_url: str) -> None:
    local = load_embedder()
    expected = local.embed(SEQUENCES)
    with TritonEmbedder(compact_url, model=MODEL_NAME, progress=False) as remote:
        assert remote.info == local.info
        assert remote.max_length == 4096
        remote.embed(SEQUENCES[:4])  # warm-up
        start = time.perf_counter()
        vectors = remote.embed(SEQUENCES)
        elapsed = time.perf_counter() - start
    assert vectors.dtype == np.float32
    assert vectors.shape == expected.shape == (len(SEQUENCES), 512)
    difference = float(np.abs(vectors - expected).max())
    print(f"compact-kmer Triton vs local max abs diff {difference:.3g}; "
          f"{len(SEQUENCES)} sequences in {elapsed * 1000:.0f} ms")
    assert difference <= 1e-5
    norms = np.linalg.norm(vectors, axis=1)
    short = [i for i, s in enumerate(SEQUENCES) if len(s) < 5]  # no complete k-mer
    assert short == [27, 28]
    assert np.all(norms[short] == 0.0)
    np.testing.assert_allclose(np.delete(norms, short), 1.0, atol=1e-5)
    # U and T are the same residue; different sequences differ
    assert np.abs(vectors[24] - vectors[25]).max() <= 1e-6
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3


def test_committed_repository_describes_the_default_model() -> None:
    config = Path(__file__).parents[2] / "model_repository" / MODEL_NAME / "config.pbtxt"
    info = load_embedder().info
    text = config.read_text()
    assert f'key: "model_name" value: {{ string_value: "{info.name}" }}' in text
    assert f'key: "model_version" value: {{ string_value: "{info.version}" }}' in text
