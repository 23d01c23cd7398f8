"""A real ``tritonserver`` (pytriton's bundled binary, CPU, Python backend) for the Triton tests.

One server per session serves a repository exported from a randomly initialised RiNALMo-micro
+ homology head; the same :class:`TorchEmbedder` is the local reference. Set ``TRITON_URL`` to
run the tests against an external server instead; the parity test then needs
``TRITON_MODEL_PT``, the TorchScript file that server serves, as its reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rinalmo_search.embedder.base import Embedder
from rinalmo_search.embedder.triton.server import TritonServer, check_runnable
from triton_testkit import EXTERNAL_URL, TorchScriptEmbedder, build_reference, export_repository


@pytest.fixture(scope="session")
def runnable() -> None:
    """Skip (with the reason) where the bundled tritonserver cannot run at all."""
    reason = check_runnable()
    if reason:
        pytest.skip(f"tritonserver cannot run here: {reason}")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The local embedder the served model must agree with."""
    if EXTERNAL_URL:
        path = os.environ.get("TRITON_MODEL_PT")
        if not path:
            pytest.skip("TRITON_URL is set: set TRITON_MODEL_PT to the model.pt it serves")
        return TorchScriptEmbedder(Path(path))
    return build_reference("micro", seed=0)


@pytest.fixture(scope="session")
def triton_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """gRPC URL of the session's server (``TRITON_URL``, or one started here on loopback)."""
    if EXTERNAL_URL:
        yield EXTERNAL_URL
        return
    reason = check_runnable()
    if reason:
        pytest.skip(f"tritonserver cannot run here: {reason}")
    reference: Embedder = request.getfixturevalue("reference")
    repository = export_repository(reference, tmp_path_factory.mktemp("model_repository"))
    with TritonServer(repository, startup_timeout_s=240) as server:
        yield server.url
