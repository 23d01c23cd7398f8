"""``rinalmo-search serve``: starts a CPU tritonserver, prints its URL, stops on Ctrl-C."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.embedder.base import ModelInfo
from rinalmo_search.embedder.model_file import save_model_file
from rinalmo_search.embedder.registry import load_embedder
from rinalmo_search.embedder.triton.client import TritonEmbedder
from rinalmo_search.embedder.triton.server import TritonServer
from triton_testkit import MODEL_NAME, build_reference

from rinalmo_search.cli import main
from rinalmo_search.errors import InferenceError


def _lines(stream, sink: queue.Queue) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        sink.put(line)
    sink.put(None)


def test_export_then_serve_prints_the_url_serves_and_stops(runnable: None, tmp_path: Path) -> None:
    # a model file, exported by the CLI (TorchScript + this repository's configs), then served
    tiny = build_reference(None, seed=2)
    model_file = save_model_file(
        tmp_path / "tiny.pt",
        name="rinalmo-tiny-test",
        version="7",
        backbone=tiny.backbone,  # type: ignore[attr-defined]
        head=tiny.head,  # type: ignore[attr-defined]
    )
    repository = tmp_path / "repo"
    command = ["export", "--model", str(model_file), "--repository", str(repository)]
    assert main(["-q", *command]) == 0
    reference = load_embedder(str(model_file), progress=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "rinalmo_search", "serve", "--repository", str(repository),
         "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, output), daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        while url is None:
            line = output.get(timeout=240)
            assert line is not None, "serve exited before printing a URL:\n" + "".join(seen)
            seen.append(line)
            match = re.search(r"ready at (\S+:\d+)", line)
            url = match.group(1) if match else None
        with TritonEmbedder(url, model=MODEL_NAME) as remote:
            assert remote.info == reference.info == ModelInfo("rinalmo-tiny-test", "7", 512)
            vectors = remote.embed(["ACGUACGU", "GGGAAACCC"])
        assert np.abs(vectors - reference.embed(["ACGUACGU", "GGGAAACCC"])).max() <= 1e-5
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        with pytest.raises(InferenceError, match=f"{url} is unavailable"):
            TritonEmbedder(url, model=MODEL_NAME, retries=0, timeout_s=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_refuses_a_repository_without_an_exported_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rinalmo_search", "serve", "--repository", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"No exported model in {tmp_path}" in result.stderr


def test_a_port_in_use_is_reported_in_one_line(runnable: None, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = TritonServer(tmp_path, grpc_port=port, startup_timeout_s=120)
        with pytest.raises(InferenceError, match=f"127.0.0.1:{port}' already in use") as caught:
            server.start()
    assert str(caught.value).startswith("tritonserver exited with code 1 while starting: ")
    assert "\n" not in str(caught.value)
    assert server.pid is None
