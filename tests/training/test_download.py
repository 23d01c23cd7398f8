"""Rfam release download against a real HTTP server on loopback (ranges, checksums, resume)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from rinalmo_search.training.download import DownloadError, download_release, fetch

from rinalmo_search.cli import main


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single ``Range: bytes=N-`` support; records the ranges asked for."""

    ranges: list[tuple[str, str]] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def send_head(self):  # type: ignore[override]
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not header or not path.is_file():
            return super().send_head()
        RangeHandler.ranges.append((self.path, header))
        start = int(header.removeprefix("bytes=").split("-")[0])
        data = path.read_bytes()
        if start >= len(data):
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        import io

        return io.BytesIO(data[start:])


@pytest.fixture
def release_server(tmp_path: Path, shared_rfam: Path) -> Iterator[tuple[str, Path]]:
    """Serve a small fake release 14.10 built from real shared files, on 127.0.0.1."""
    root = tmp_path / "www"
    release = root / "14.10"
    (release / "database_files").mkdir(parents=True)
    seed = (shared_rfam / "seeds" / "RF00005.sto").read_bytes()
    (release / "Rfam.seed.gz").write_bytes(gzip.compress(seed, mtime=0))
    (release / "Rfam.clanin").write_bytes((shared_rfam / "Rfam.clanin").read_bytes())
    (release / "Rfam.full_region.gz").write_bytes(
        gzip.compress(b"RF00005\tAB003409.1\t96\t167\t70.0\t1e-12\t1\t72\t0\tseed\n", mtime=0)
    )
    (release / "database_files" / "family.txt.gz").write_bytes(
        gzip.compress(b"RF00005\ttRNA\tTransfer_RNA\ttRNA\n", mtime=0)
    )
    lines = [
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(release)}\n"  # noqa: S324
        for p in sorted(release.rglob("*")) if p.is_file()
    ]
    (release / "md5.txt").write_text("".join(lines))
    RangeHandler.ranges = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(RangeHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", release
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_verifies_and_skips_complete_files(release_server, tmp_path: Path) -> None:
    url, release = release_server
    out = tmp_path / "rfam"
    written = download_release("14.10", out, base_url=url)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted([
        "Rfam.seed.gz", "Rfam.clanin", "Rfam.full_region.gz", "database_files/family.txt.gz",
    ])
    for path in written:
        assert path.read_bytes() == (release / path.relative_to(out)).read_bytes()
    record = json.loads((out / "download.json").read_text())
    assert all(entry["verified"] is True for entry in record["files"].values())
    # a second run finds every file complete: nothing is fetched again but md5.txt
    before = {p: p.stat().st_mtime_ns for p in written}
    download_release("14.10", out, base_url=url)
    assert {p: p.stat().st_mtime_ns for p in written} == before


def test_interrupted_download_resumes_with_a_range_request(release_server, tmp_path) -> None:
    url, release = release_server
    data = (release / "Rfam.seed.gz").read_bytes()
    target = tmp_path / "Rfam.seed.gz"
    (tmp_path / "Rfam.seed.gz.part").write_bytes(data[: len(data) // 2])
    fetch(f"{url}/14.10/Rfam.seed.gz", target)
    assert target.read_bytes() == data
    assert not (tmp_path / "Rfam.seed.gz.part").exists()
    assert RangeHandler.ranges == [("/14.10/Rfam.seed.gz", f"bytes={len(data) // 2}-")]


def test_checksum_mismatch_and_missing_files_fail_clearly(release_server, tmp_path) -> None:
    url, release = release_server
    (release / "Rfam.clanin").write_text("CL00001\ttRNA\n")  # no longer matches md5.txt
    with pytest.raises(DownloadError, match=r"Rfam.clanin: MD5 [0-9a-f]{32} does not match"):
        download_release("14.10", tmp_path / "a", base_url=url, files=["Rfam.clanin"])
    assert (tmp_path / "a" / "Rfam.clanin.bad").exists()
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_release("14.10", tmp_path / "b", base_url=url, files=["Rfam.cm.gz"])
    with pytest.raises(Exception, match="Invalid release '14.x'"):
        download_release("14.x", tmp_path / "c", base_url=url)


def test_release_without_checksums_is_recorded_unverified(release_server, tmp_path) -> None:
    url, release = release_server
    (release / "md5.txt").unlink()
    download_release("14.10", tmp_path / "d", base_url=url, files=["Rfam.clanin"])
    record = json.loads((tmp_path / "d" / "download.json").read_text())
    assert record["files"]["Rfam.clanin"]["verified"] is False


def test_cli_download_then_prepare(release_server, tmp_path: Path) -> None:
    url, _ = release_server
    out = tmp_path / "rfam-14.10"
    assert main(["data", "download-rfam", "--release", "14.10", "--out", str(out),
                 "--base-url", url]) == 0
    assert (out / "Rfam.seed.gz").is_file() and (out / "md5.txt").is_file()
    # the downloaded release files are what 'data prepare' reads
    assert main(["data", "prepare", "--rfam-dir", str(out), "--out", str(tmp_path / "split"),
                 "--dedup", "exact", "--fractions", "1,0,0"]) == 0
    split = json.loads((tmp_path / "split" / "split.json").read_text())
    assert split["train"] == ["RF00005"]
