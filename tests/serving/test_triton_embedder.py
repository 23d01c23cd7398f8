"""TritonEmbedder against a real tritonserver: parity, batching, and failures."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from rinalmo_search.embedder.base import Embedder
from rinalmo_search.embedder.triton.client import TritonEmbedder
from rinalmo_search.embedder.triton.server import TritonServer, free_port
from triton_testkit import (
    EXTERNAL_URL,
    MAX_LENGTH,
    MODEL_NAME,
    build_reference,
    export_repository,
    random_sequences,
)

from rinalmo_search.errors import InferenceError

# lengths spread over several buckets, plus the alphabet's corner cases
PARITY_SEQUENCES = random_sequences(10, 8, 140, seed=11) + [
    "acgu",  # lower case, U
    "ACGT",  # T is U
    "ACGUNRYKM-ACGU",  # IUPAC codes and a gap keep their own tokens
    "A",
    "GGGGAAAACCCCUUUUGGGGAAAACCCCUUUU" * 3,
]


@pytest.fixture(scope="module")
def local_vectors(reference: Embedder) -> np.ndarray:
    """The reference embeddings of PARITY_SEQUENCES (computed once: micro is slow on CPU)."""
    return reference.embed(PARITY_SEQUENCES)


@pytest.fixture(scope="module")
def triton_vectors(triton_url: str) -> np.ndarray:
    """PARITY_SEQUENCES embedded through Triton with client-side tokenisation."""
    with TritonEmbedder(triton_url, model=MODEL_NAME) as remote:
        return remote.embed(PARITY_SEQUENCES)


def test_parity_with_local_embedder(
    triton_url: str, reference: Embedder, triton_vectors: np.ndarray, local_vectors: np.ndarray
) -> None:
    with TritonEmbedder(triton_url, model=MODEL_NAME) as remote:
        if not EXTERNAL_URL:
            assert remote.info == reference.info
        dim = remote.info.dim
    vectors, expected = triton_vectors, local_vectors
    assert vectors.dtype == np.float32
    assert vectors.shape == expected.shape == (len(PARITY_SEQUENCES), dim)
    difference = float(np.abs(vectors - expected).max())
    print(f"Triton vs local max abs diff: {difference:.3g}")
    assert difference <= 1e-5
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the identical pair (U vs T) must embed identically; different sequences must not
    assert np.abs(vectors[10] - vectors[11]).max() <= 1e-6
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3


def test_front_model_embeds_raw_sequences_the_same_way(
    triton_url: str, triton_vectors: np.ndarray, local_vectors: np.ndarray
) -> None:
    sequences = PARITY_SEQUENCES
    client = grpcclient.InferenceServerClient(triton_url)
    try:
        strings = grpcclient.InferInput("sequence", [len(sequences), 1], "BYTES")
        strings.set_data_from_numpy(np.array([[s.encode()] for s in sequences], dtype=np.object_))
        vectors = client.infer(f"{MODEL_NAME}_text", [strings]).as_numpy("embedding")
    finally:
        client.close()
    assert vectors.shape == triton_vectors.shape
    assert np.abs(vectors - triton_vectors).max() <= 1e-5
    assert np.abs(vectors - local_vectors).max() <= 1e-5


def test_info_comes_from_the_served_config(triton_url: str) -> None:
    with TritonEmbedder(triton_url, model=MODEL_NAME) as remote:
        assert remote.info.dim == 512
        assert remote.info.name and remote.info.version
        if not EXTERNAL_URL:
            assert remote.max_length == MAX_LENGTH
        assert 1 <= remote.batch_size <= 64


def _statistics(url: str) -> tuple[int, int, int]:
    """(inference count, execution count, largest executed batch) of the served model."""
    client = grpcclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"][0]
    finally:
        client.close()
    largest = max((int(b["batch_size"]) for b in stats.get("batch_stats", [])), default=0)
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0)), largest


def test_concurrent_clients_are_batched(triton_url: str) -> None:
    clients, rounds = 8, 4
    sequences = random_sequences(clients, 20, 28, seed=5)  # one bucket: one tensor shape
    with TritonEmbedder(triton_url, model=MODEL_NAME) as single:
        expected = single.embed(sequences)
    inferences_before, executions_before, _ = _statistics(triton_url)
    barrier = threading.Barrier(clients)
    results: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            with TritonEmbedder(triton_url, model=MODEL_NAME) as embedder:
                barrier.wait(timeout=60)
                results[index] = [embedder.embed([sequences[index]])[0] for _ in range(rounds)]
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    inferences, executions, largest = _statistics(triton_url)
    served = inferences - inferences_before
    runs = executions - executions_before
    print(f"{served} requests served in {runs} model runs; largest batch {largest}")
    assert served >= clients * rounds
    assert runs < served, "no two requests were batched together"
    assert largest > 1
    for index, vectors in results.items():
        for vector in vectors:
            assert np.abs(vector - expected[index]).max() <= 1e-5


def test_unknown_model_is_named_with_the_url(triton_url: str) -> None:
    with pytest.raises(InferenceError) as caught:
        TritonEmbedder(triton_url, model="no_such_model", retries=0)
    assert triton_url in str(caught.value)
    assert "no_such_model" in str(caught.value)


def test_no_server_gives_a_quick_error_naming_the_url() -> None:
    url = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(InferenceError, match=f"Triton server at {url} is unavailable"):
        TritonEmbedder(url, retries=2, backoff_s=0.1, timeout_s=5)
    assert time.monotonic() - start < 10


def test_long_sequences_frozen_killed_and_restarted_server(
    runnable: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny = build_reference(None, seed=1)
    repository = export_repository(tiny, tmp_path)
    server = TritonServer(repository, startup_timeout_s=240).start()
    try:
        # longer than the exported max_length: embedded anyway, as the local embedder does
        longer = random_sequences(2, MAX_LENGTH + 10, MAX_LENGTH + 40, seed=4) + ["ACGU" * 5]
        with TritonEmbedder(server.url, model=MODEL_NAME) as remote:
            with caplog.at_level(logging.WARNING, logger="rinalmo_search.embedder.triton.client"):
                vectors = remote.embed(longer)
        assert "2 sequence(s) longer than the 1022 nt" in caplog.text
        assert np.abs(vectors - tiny.embed(longer)).max() <= 1e-5
        # a frozen server: the request deadline ends the wait
        impatient = TritonEmbedder(server.url, model=MODEL_NAME, timeout_s=2, retries=0)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(InferenceError, match=f"{server.url} did not answer within 2 s"):
                impatient.embed(["ACGUACGUACGU"])
            assert time.monotonic() - start < 8
        finally:
            os.kill(server.pid, signal.SIGCONT)
        impatient.close()
        # a server killed while a client is embedding: UNAVAILABLE, retried, then an error
        embedder = TritonEmbedder(
            server.url, model=MODEL_NAME, timeout_s=10, retries=2, backoff_s=0.2, batch_size=4
        )
        patient = TritonEmbedder(
            server.url, model=MODEL_NAME, retries=60, backoff_s=0.25, max_backoff_s=1.0
        )
        sequences = random_sequences(64, 30, 200, seed=3)
        completed = threading.Event()
        outcome: dict[str, object] = {}

        def keep_embedding() -> None:
            try:
                while True:
                    embedder.embed(sequences)
                    completed.set()
            except BaseException as error:  # noqa: BLE001 - inspected by the test
                outcome["error"] = error
                outcome["at"] = time.monotonic()

        worker = threading.Thread(target=keep_embedding, daemon=True)
        worker.start()
        assert completed.wait(timeout=60), "the server never answered"
        killed_at = time.monotonic()
        server.kill()
        worker.join(timeout=30)
        assert not worker.is_alive(), "embed() hung after the server was killed"
        error = outcome["error"]
        assert isinstance(error, InferenceError), repr(error)
        assert f"Triton server at {server.url} is unavailable" in str(error)
        assert float(outcome["at"]) - killed_at < 10  # type: ignore[arg-type]
        embedder.close()
        # a patient client rides out a restart on the same port: UNAVAILABLE is retried
        server.stop()
        patient_result: dict[str, object] = {}

        def embed_patiently() -> None:
            try:
                patient_result["vectors"] = patient.embed(sequences[:4])
            except BaseException as error:  # noqa: BLE001 - inspected by the test
                patient_result["error"] = error

        waiter = threading.Thread(target=embed_patiently, daemon=True)
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive(), patient_result  # still retrying, not failed
        server = TritonServer(repository, grpc_port=int(server.url.rsplit(":", 1)[1])).start()
        waiter.join(timeout=120)
        assert "error" not in patient_result, patient_result.get("error")
        vectors = patient_result["vectors"]
        assert np.abs(vectors - tiny.embed(sequences[:4])).max() <= 1e-5  # type: ignore[operator]
        patient.close()
    finally:
        server.stop()
