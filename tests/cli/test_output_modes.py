"""Every file the project writes goes through ``seqio.atomic_write``: the usual mode
(``0o666`` less the umask, not ``mkstemp``'s ``0o600``) and nothing half-written."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest


@pytest.fixture
def umask_022() -> object:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_model_files_get_the_usual_mode(tmp_path: Path, umask_022: object) -> None:
    from rinalmo_search.embedder.head import HeadConfig, HomologyHead
    from rinalmo_search.embedder.model_file import save_model_file, update_model_metadata
    from rinalmo_search.embedder.rinalmo import RiNALMoConfig

    head = HomologyHead(HeadConfig(input_dim=32, hidden_dim=16, output_dim=8, num_blocks=1,
                                   num_heads=2, ffn_dim=32))
    backbone = RiNALMoConfig(embed_dim=32, num_blocks=1, num_heads=2)
    path = save_model_file(tmp_path / "m.pt", name="t", version="1", backbone=backbone,
                           head=head, backbone_source="nowhere.pt")
    assert _mode(path) in (0o644, 0o664)
    os.chmod(path, 0o600)
    update_model_metadata(path, {"note": "x"})
    assert _mode(path) in (0o644, 0o664)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_downloaded_weights_get_the_usual_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: object
) -> None:
    from rinalmo_search.embedder import pretrained

    served = tmp_path / "served"
    served.mkdir()
    payload = b"weights" * 1000
    (served / "rinalmo_micro_pretrained.pt").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import hashlib
        from dataclasses import replace

        weights = replace(pretrained.PUBLISHED["micro"],
                          sha256=hashlib.sha256(payload).hexdigest())
        monkeypatch.setitem(pretrained.PUBLISHED, "micro", weights)
        monkeypatch.setenv(pretrained.WEIGHTS_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
        target = pretrained.download_weights("micro", directory=tmp_path / "cache",
                                             progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert target.read_bytes() == payload and _mode(target) in (0o644, 0o664)
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
