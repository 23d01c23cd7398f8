"""Faults on a real Milvus server (issue 15): killed mid-``index``, stopped under ``search``,
and concurrent clients while another process writes.

Each command runs as its own process, as a user (or Galaxy) runs it, against a server that
``rinalmo_search.milvus.server`` starts on a private data folder and port. Real Rfam seed
sequences; a few thousand at most, so that every test ends within a few minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, server_folder
from rinalmo_search.milvus import VectorStore, server

from rinalmo_search.hits import read_hits_tsv
from rinalmo_search.seqio import SequenceRecord, iter_fasta

RFAM = Path(__file__).resolve().parents[3] / "shared" / "data" / "rfam" / "sequences.fasta"
PROGRAM = Path(sys.executable).with_name("rinalmo-search")
ERROR = "rinalmo-search: error: "

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RFAM.exists(), reason=f"shared Rfam data not found at {RFAM}"),
]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Path, int]]:
    """(data folder, port) of a server for this module; tests may kill and restart it."""
    with server_folder() as data:
        port = free_port()
        server.start(data, port)
        try:
            yield data, port
        finally:
            server.stop(data)


def ensure_running(data: Path, port: int) -> str:
    info, _ = server.start(data, port)
    return info.uri


def rfam_records(n: int, skip: int = 0) -> list[SequenceRecord]:
    """``n`` Rfam seed records with distinct sequences, after the first ``skip`` such ones."""
    seen: set[str] = set()
    records = []
    for record in iter_fasta(RFAM):
        if record.sequence in seen:
            continue
        seen.add(record.sequence)
        if len(seen) > skip:
            records.append(record)
            if len(records) == n:
                break
    return records


def write_fasta(path: Path, records: list[SequenceRecord]) -> Path:
    path.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in records))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROGRAM), "-q", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(PROGRAM), "-q", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_error_line(stderr: str) -> str:
    """The error line, after checking that it is the only line besides progress bars."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and lines[-1].startswith(ERROR), stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    others = [line for line in lines[:-1] if "seq/s" not in line and "%|" not in line]
    assert not others, others
    return lines[-1]


def connected(pid: int, port: int) -> bool:
    """Whether process ``pid`` has an established TCP connection to 127.0.0.1:``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                return True
    return False


def stored_count(uri: str, collection: str) -> int:
    with VectorStore(uri, collection=collection, consistency="Strong", create=False) as store:
        return store.count() if store.exists() else 0


def test_server_killed_mid_index_then_rerun_after_restart(
    live: tuple[Path, int], tmp_path: Path
) -> None:
    data, port = live
    uri = ensure_running(data, port)
    records = rfam_records(6000)
    fasta = write_fasta(tmp_path / "in.fa", records)
    index = start_cli(
        "index", str(fasta), "--db", uri, "--collection", "killed", "--batch-size", "50",
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while stored_count(uri, "killed") == 0:
        assert index.poll() is None, index.communicate()
        assert time.monotonic() < deadline, "index wrote nothing in 120 s"
        time.sleep(0.2)
    assert index.poll() is None, "index finished before the server could be killed"
    info = server.status(data)
    assert info is not None
    os.killpg(info.pid, signal.SIGKILL)  # as a crash or the OOM killer does
    killed = time.monotonic()
    try:
        _, stderr = index.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        index.kill()
        pytest.fail("index still running 60 s after the server died")
    took = time.monotonic() - killed
    assert index.returncode == 1
    line = last_error_line(stderr)
    assert "unreachable" in line and f"127.0.0.1:{port}" in line, line
    assert took < 30, f"index took {took:.1f} s to notice"
    # restart (quick: the dead server's etcd sessions are dropped, not waited for), rerun:
    # exactly the input's records, none twice
    began = time.monotonic()
    ensure_running(data, port)
    assert time.monotonic() - began < 30, "restart waited for the dead server's sessions"
    again = cli("index", str(fasta), "--db", uri, "--collection", "killed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    with VectorStore(uri, collection="killed", consistency="Strong", create=False) as store:
        assert store.count() == len(records)
        stored = store.stored_hashes([r.id for r in records])
    assert set(stored) == {r.id for r in records}


def test_server_stopped_before_and_during_search(live: tuple[Path, int], tmp_path: Path) -> None:
    data, port = live
    uri = ensure_running(data, port)
    records = rfam_records(300)
    fasta = write_fasta(tmp_path / "lib.fa", records)
    done = cli("index", str(fasta), "--db", uri, "--collection", "stopped", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    queries = tmp_path / "q.fa"  # 6,000 queries: many seconds of work
    queries.write_text("".join(f">{r.id}_{k}\n{r.sequence}\n" for k in range(20) for r in records))
    search = start_cli(
        "search", str(queries), "--db", uri, "--collection", "stopped", "--out", "hits.tsv",
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while not connected(search.pid, port):  # the store is open: the search is under way
        assert search.poll() is None, search.communicate()
        assert time.monotonic() < deadline, "search did not connect in 120 s"
        time.sleep(0.1)
    time.sleep(1.0)
    assert search.poll() is None, search.communicate()
    server.stop(data)
    try:
        _, stderr = search.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        search.kill()
        pytest.fail("search still running 60 s after the server stopped")
    assert search.returncode == 1
    line = last_error_line(stderr)
    assert "unreachable" in line and f"127.0.0.1:{port}" in line, line
    assert not (tmp_path / "hits.tsv").exists()
    # stopped before the search: one line naming the URI, at once
    began = time.monotonic()
    done = cli("search", str(fasta), "--db", uri, "--collection", "stopped", "--out", "h2.tsv",
               cwd=tmp_path)
    assert done.returncode == 1
    assert uri in last_error_line(done.stderr)
    assert time.monotonic() - began < 30


def test_eight_clients_search_while_another_process_indexes(
    live: tuple[Path, int], tmp_path: Path
) -> None:
    data, port = live
    uri = ensure_running(data, port)
    library = rfam_records(400)
    more = rfam_records(3000, skip=400)  # other sequences: they cannot tie with a query
    done = cli("index", str(write_fasta(tmp_path / "lib.fa", library)), "--db", uri,
               "--collection", "busy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    writer = start_cli(
        "index", str(write_fasta(tmp_path / "more.fa", more)), "--db", uri,
        "--collection", "busy", "--batch-size", "50", cwd=tmp_path,
    )
    clients = []
    for i in range(8):
        own = library[i * 50 : (i + 1) * 50]
        queries = write_fasta(tmp_path / f"q{i}.fa", own)
        clients.append((own, i, start_cli(
            "search", str(queries), "--db", uri, "--collection", "busy", "--top-k", "5",
            "--out", f"hits{i}.tsv", cwd=tmp_path,
        )))
    for own, i, client in clients:
        _, stderr = client.communicate(timeout=600)
        assert client.returncode == 0, stderr[-3000:]
        best = {}
        for fields in read_hits_tsv(tmp_path / f"hits{i}.tsv"):
            if fields["rank"] == "1":
                best[fields["query_id"]] = fields["target_id"]
        assert best == {r.id: r.id for r in own}
    _, stderr = writer.communicate(timeout=600)
    assert writer.returncode == 0, stderr[-3000:]
    assert stored_count(uri, "busy") == len(library) + len(more)
