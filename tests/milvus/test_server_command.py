"""``rinalmo-search server start|status|stop`` on a real Milvus server (the ``milvus`` wheel).

Each command runs as its own process, as a user runs it: the server must outlive ``start``,
be found again from its data folder, and refuse a busy port or a folder held by another.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, server_folder
from rinalmo_search.milvus import server

PROGRAM = Path(sys.executable).with_name("rinalmo-search")


def cli(*args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROGRAM), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rinalmo-search: error: "), done.stderr
    return lines[0]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, not yet reaped by its new parent, does not)."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_start_status_start_again_stop(tmp_path: Path) -> None:
    with server_folder() as data:
        start_status_start_again_stop(data, free_port(), tmp_path)


def start_status_start_again_stop(data: Path, port: int, tmp_path: Path) -> None:
    began = time.monotonic()
    done = cli("server", "start", "--data", str(data), "--port", str(port), cwd=tmp_path)
    try:
        assert done.returncode == 0, done.stderr
        uri = f"http://127.0.0.1:{port}"
        assert done.stdout.splitlines()[-1] == f"URI {uri}"
        assert time.monotonic() - began < 300
        # the server outlived the command, in its own session, holding the folder's lock
        state = json.loads((data / "server.json").read_text())
        assert os.getsid(state["pid"]) == state["pid"] != os.getsid(0)
        status = cli("server", "status", "--data", str(data), cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.splitlines()[-1] == f"URI {uri}"
        assert f"pid {state['pid']}" in status.stdout
        # a second start reports the running one, whatever port it asks for
        again = cli("server", "start", "--data", str(data), "--port", str(free_port()),
                    cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert again.stdout.splitlines()[-1] == f"URI {uri}"
        # another data folder on the same port: one line, exit 1, nothing started
        other = tmp_path / "other"
        busy = cli("server", "start", "--data", str(other), "--port", str(port), cwd=tmp_path)
        assert f"Port {port}" in one_error_line(busy)
        assert server.status(other) is None
        # it answers clients
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri)
        client.create_collection("c", dimension=4)
        assert client.list_collections() == ["c"]
        client.close()
    finally:
        stopped = cli("server", "stop", "--data", str(data), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not (data / "server.json").exists()
    assert not alive(state["pid"])
    status = cli("server", "status", "--data", str(data), cwd=tmp_path)
    assert status.returncode == 3 and "not running" in status.stdout
    assert cli("server", "stop", "--data", str(data), cwd=tmp_path).returncode == 0
    # the data stay: a restart serves the collection again, quickly (no stale sessions)
    began = time.monotonic()
    done = cli("server", "start", "--data", str(data), "--port", str(port), cwd=tmp_path)
    try:
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - began < 30
        from pymilvus import MilvusClient

        client = MilvusClient(uri=f"http://127.0.0.1:{port}")
        assert client.list_collections() == ["c"]
        client.close()
    finally:
        assert cli("server", "stop", "--data", str(data), cwd=tmp_path).returncode == 0


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        done = cli("server", "start", "--data", str(tmp_path / "d"), "--port", str(port),
                   cwd=tmp_path, timeout=60)
    assert f"Port {port} on 127.0.0.1 is in use" in one_error_line(done)
    assert not (tmp_path / "d" / "server.json").exists()


def test_folder_locked_by_another_process_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    with open(data / "server.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = cli("server", "start", "--data", str(data), "--port", str(free_port()),
                   cwd=tmp_path, timeout=60)
        assert f"{data} is locked by another process" in one_error_line(done)
        status = cli("server", "status", "--data", str(data), cwd=tmp_path, timeout=60)
        assert "locked by another process" in one_error_line(status)


def test_invalid_port_and_status_of_nothing(tmp_path: Path) -> None:
    done = cli("server", "start", "--data", str(tmp_path), "--port", "0", cwd=tmp_path,
               timeout=60)
    assert "Invalid port 0" in one_error_line(done)
    status = cli("server", "status", "--data", str(tmp_path / "none"), cwd=tmp_path, timeout=60)
    assert status.returncode == 3 and "not running" in status.stdout
    stop = cli("server", "stop", "--data", str(tmp_path / "none"), cwd=tmp_path, timeout=60)
    assert stop.returncode == 0 and "not running" in stop.stdout


def test_help_teaches_by_example(tmp_path: Path) -> None:
    done = cli("server", "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    assert "rinalmo-search server start" in done.stdout and "URI http://" in done.stdout
