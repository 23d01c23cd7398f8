"""A local Milvus standalone server (the PyPI ``milvus==2.3.5`` wheel), run in the background.

:func:`start` launches ``DATA/bin/milvus run standalone`` detached from the caller (its own
session and process group; it outlives the command), waits until it answers, and returns its
:class:`ServerInfo`; :func:`status` and :func:`stop` find it again from its data folder::

    DATA/                 default ~/.local/share/rinalmo-search/milvus-server
      server.json         pid, ports, start time (written by start, removed by stop)
      server.lock         flock-ed by the server process for its whole life (the kernel frees
                          it when the process dies, however it dies: no stale lock)
      logs/server.log     the server's output, one '=== start' line per start
      bin/ configs/ data/ logs/ run/   the wheel's own layout (binaries, milvus.yaml, data)

Traps of the wheel, found by reading it and running it, and what this module does:

* **etcd ports.** Milvus embeds etcd, which listens on 2379/2380 whatever the wheel's Python
  wrapper says (its ``etcd_port`` only fills a client endpoint the embedded etcd never uses), so
  a second server on the machine dies at start-up. Here etcd gets a config file (key
  ``etcd.config.path``, which the wheel's template lacks and this module adds) with two free
  ports on 127.0.0.1, so servers on different data folders coexist.
* **Ports that drift.** The wrapper chooses every port by scanning upward from its default (a
  busy 19530 silently becomes 19531), and refuses a pinned port still in TIME_WAIT. Here the
  client, etcd and health ports are set as plain config keys (a busy client port: a one-line
  error) and held while the wrapper scans, so that it gives none of them to an internal service.
* **All interfaces.** Milvus 2.3 has no listen-address setting: the client port, the internal
  gRPC ports and the metrics/health port listen on every interface (``*.ip`` only sets the
  address advertised to the other components; it is 127.0.0.1 here). Only etcd is bound to
  127.0.0.1. There is no authentication: on a machine reachable from untrusted networks,
  firewall the ports.
* **SIGTERM may never finish.** The coordinators stop within ~0.1 s, then the worker nodes may
  retry the stopped root coordinator for minutes (seen: > 10 min; the wheel's own ``stop()``
  kills after 1 s), while clients get errors that name no server. :func:`stop` therefore
  SIGKILLs the process group. Nothing acknowledged is lost: inserts are in the RocksMQ
  write-ahead log under ``data/`` and in etcd (both crash-safe) and are replayed on restart.
* **Slow start after a stop or crash.** Milvus 2.3.5 does not revoke its etcd sessions when
  it dies, and etcd renews every lease when it restarts, so the next server waits for the dead
  one's sessions to expire (the lease TTL; at the default 30 s, ~55 s in all) instead of ~4 s.
  Here :func:`start` deletes, while it waits, every session key but the new server's own (its
  ServerID is read from ``/tmp/milvus/server_id_PID``): a start after a SIGKILL took 5.9 s.
  The folder's lock admits one live server, so no live session is touched.
* **Session leases.** Every component exits when its etcd lease (``common.session.ttl``, 30 s)
  lapses; on this 2-core VM a stall of 31 s ("clock offset is huge, jet-lag=31.6s" in the log)
  did that to a server mid-test. Here the TTL is 120 s; it costs nothing at restart, since the
  stale sessions are dropped (above).
* **Files outside the data folder.** Milvus writes ``/tmp/milvus/server_id_PID`` on every start
  (a hard-coded path; a few bytes each, never removed).
* **First start unpacks** ~180 MB of binaries into ``DATA/bin`` (~6 s of CPU); later starts
  only check their checksums.
* **The name.** The wheel imports as ``milvus``, and this repository's ``milvus/`` folder would
  shadow it whenever the repository root is on ``sys.path``. The launcher therefore runs as
  ``python -I THIS_FILE`` (isolated: neither the current folder nor ``PYTHONPATH`` is on the
  path) in the data folder; nothing else here imports the wheel.

Large collections: segments are sealed at ``dataCoord.segment.maxSize`` 8192 MB ×
``sealProportion`` 0.5 instead of 512 × 0.23 (~55k rows of 512-d vectors), because every search
visits every segment's graph: at 1M rows 4 segments searched top-1,000 in 64 ms, 17 in 141 ms.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from rinalmo_search.errors import ConfigError, StoreError

DEFAULT_PORT = 19530
START_TIMEOUT_S = 300.0
STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "logs/server.log"
ETCD_CONFIG = "configs/etcd.yaml"
HOST = "127.0.0.1"
SESSIONS = "by-dev/meta/session/"  # etcd prefix of the components' session keys
SERVICES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
SETTINGS: dict[str, object] = {
    "dataCoord.segment.maxSize": 8192,  # MB; with sealProportion 0.5: ~4 segments per 1M rows
    "dataCoord.segment.sealProportion": 0.5,
    # a stalled VM (seen: 31 s) outlived the 30 s leases, and every component exited
    "common.session.ttl": 120,
}
_ETCD_ANCHOR = "    embed: true"  # etcd.use.embed in the wheel's template; etcd.config goes after


@dataclass(frozen=True)
class ServerInfo:
    """A server started by :func:`start`, as recorded in ``DATA/server.json``.

    Attributes:
        data_dir: the server's data folder.
        pid: the ``milvus`` process (also its process group).
        port: the client (gRPC + REST) port on 127.0.0.1.
        metrics_port: the port of ``/healthz``.
        etcd_ports: the embedded etcd's client and peer ports.
        started: start time, seconds since the epoch.
    """

    data_dir: str
    pid: int
    port: int
    metrics_port: int
    etcd_ports: tuple[int, int]
    started: float

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT``, what ``--db`` takes."""
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return Path(self.data_dir) / LOG_FILE


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/rinalmo-search/milvus-server`` (``~/.local/share/...`` by default)."""
    from rinalmo_search.config import user_data_dir

    return user_data_dir() / "milvus-server"


# ── start / status / stop ──────────────────────────────────────────────────────────────────


def start(
    data_dir: str | Path | None = None,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = START_TIMEOUT_S,
) -> tuple[ServerInfo, bool]:
    """Start a server on ``data_dir`` in the background, or find the one already running.

    Arguments:
        data_dir: its data folder (created); default :func:`default_data_dir`.
        port: the client port on 127.0.0.1 (ignored when a server already runs there).
        timeout: seconds to wait until it answers.

    Returns:
        The server, and whether this call started it (``False``: it was already running).

    Raises:
        ConfigError: ``port`` is not 1..65535.
        StoreError: the port is busy, the folder is held by another process, or the server
            exited or did not answer within ``timeout`` (the message names the log).
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"Invalid port {port} (expected 1..65535)")
    data = data_path(data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
        lock = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"Cannot use Milvus data folder {data}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = status(data)
            if running is not None:
                return running, False
            raise StoreError(f"Milvus data folder {data} is locked by another process") from None
        _check_unused(data)
        _check_port_free(port)
        info, process = _spawn(data, port, lock)
    finally:
        os.close(lock)  # the server holds its own copy of the locked descriptor
    try:
        _wait_healthy(info, process, timeout)
    except BaseException:
        _kill_group(info.pid)
        (data / STATE_FILE).unlink(missing_ok=True)
        raise
    return info, True


def status(data_dir: str | Path | None = None) -> ServerInfo | None:
    """The server running on ``data_dir``, or ``None`` when none is.

    Raises:
        StoreError: the folder is locked but has no readable ``server.json`` (a server started
            some other way, or a start still writing it).
    """
    data = data_path(data_dir)
    if not _locked(data):
        return None
    try:
        state = json.loads((data / STATE_FILE).read_text(encoding="utf-8"))
        state["etcd_ports"] = tuple(state["etcd_ports"])
        return ServerInfo(**state)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise StoreError(
            f"Milvus data folder {data} is locked by another process but {STATE_FILE} is "
            f"unreadable ({error})"
        ) from None


def is_healthy(info: ServerInfo, timeout: float = 2.0) -> bool:
    """Whether the server's ``/healthz`` answers OK within ``timeout`` seconds."""
    url = f"http://{HOST}:{info.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return b"OK" in response.read()
    except OSError:
        return False


def stop(data_dir: str | Path | None = None) -> ServerInfo | None:
    """Stop the server running on ``data_dir``; ``None`` when none was running.

    SIGKILL to its process group, at once: Milvus 2.3.5's SIGTERM shutdown stops the
    coordinators first and then may hang for minutes, answering clients with errors that name
    no server meanwhile, and it saves nothing that is not already on disk (acknowledged inserts
    are in the RocksMQ write-ahead log and etcd, both crash-safe; the next start replays them
    and drops the dead server's sessions). ``server.json`` is removed.

    Raises:
        StoreError: the process survived SIGKILL for 30 s.
    """
    data = data_path(data_dir)
    info = status(data)
    if info is None:
        return None
    _kill_group(info.pid)
    deadline = time.monotonic() + 30.0
    while _locked(data):
        if time.monotonic() > deadline:
            raise StoreError(f"Milvus server pid {info.pid} ({info.uri}) survived SIGKILL")
        time.sleep(0.1)
    (data / STATE_FILE).unlink(missing_ok=True)
    return info


# ── helpers ────────────────────────────────────────────────────────────────────────────────


def data_path(data_dir: str | Path | None) -> Path:
    """``data_dir`` as an absolute path (``~`` expanded), or :func:`default_data_dir`."""
    return (Path(data_dir).expanduser() if data_dir else default_data_dir()).absolute()


def _locked(data: Path) -> bool:
    """Whether a process holds ``DATA/server.lock`` (probed, then released at once)."""
    try:
        fd = os.open(data / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a probe's lock
    return False


def _check_unused(data: Path) -> None:
    """Refuse a folder whose RocksMQ store a Milvus not started here holds (e.g. the wheel's
    own ``milvus-server --data``): it would die at start-up on RocksDB's lock."""
    for name in ("rocksmq", "rocksmq_meta_kv"):
        path = data / "data" / name / "LOCK"
        if not path.exists():
            continue
        with open(path, "rb+") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise StoreError(
                    f"Milvus data folder {data} is in use by another Milvus process ({path} "
                    "is locked)"
                ) from None
            fcntl.lockf(handle, fcntl.LOCK_UN)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as Milvus binds: on every interface, past the TIME_WAIT of earlier connections
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as error:
            reason = "in use" if error.errno == errno.EADDRINUSE else error.strerror
            raise StoreError(
                f"Port {port} on {HOST} is {reason} (another Milvus server? choose another "
                "with --port N)"
            ) from None


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free now, chosen by the kernel."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(probe)
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _etcd_ports(data: Path) -> tuple[int, int]:
    """The embedded etcd's ports of the last start if free, else two new ones.

    Kept because a restart whose etcd listens elsewhere waits ~50 s for its sessions."""
    try:
        text = (data / ETCD_CONFIG).read_text(encoding="utf-8")
        client = int(text.split("listen-client-urls: ")[1].split()[0].rsplit(":", 1)[1])
        peer = int(text.split("listen-peer-urls: ")[1].split()[0].rsplit(":", 1)[1])
    except (OSError, IndexError, ValueError):
        client, peer = _free_ports(2)
        return client, peer
    for port in (client, peer):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                client, peer = _free_ports(2)
                return client, peer
    return client, peer


def _spawn(data: Path, port: int, lock: int) -> tuple[ServerInfo, subprocess.Popen]:
    """Launch this file as the detached launcher, which execs the server; record its state."""
    from rinalmo_search.seqio import atomic_write

    (metrics,) = _free_ports(1)
    etcd_client, etcd_peer = _etcd_ports(data)
    started = time.time()
    log = data / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"=== start {time.strftime('%Y-%m-%dT%H:%M:%S%z')} port {port}\n".encode())
        out.flush()
        job = {"data": str(data), "port": port, "metrics": metrics}
        job["etcd"] = [etcd_client, etcd_peer]
        process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), json.dumps(job), str(lock)],
            cwd=data,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(lock,),
            start_new_session=True,
        )
    info = ServerInfo(str(data), process.pid, port, metrics, (etcd_client, etcd_peer), started)
    with atomic_write(data / STATE_FILE) as handle:
        json.dump(asdict(info), handle, indent=1)
    return info, process


def _wait_healthy(info: ServerInfo, process: subprocess.Popen, timeout: float) -> None:
    """Wait until ``/healthz`` says OK and the client port lists collections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StoreError(
                f"Milvus server exited during start-up (code {process.returncode}): "
                f"{_last_error(info.log)} (log: {info.log})"
            )
        if is_healthy(info) and _answers(info):
            return
        own = _own_server_id(info)
        if own is not None:
            _drop_sessions(info, keep=own)  # a crashed server's, which it would wait for
        time.sleep(0.25)
    raise StoreError(
        f"Milvus server did not answer on {info.uri} within {timeout:.0f} s (log: {info.log})"
    )


def _answers(info: ServerInfo) -> bool:
    from pymilvus import MilvusClient, MilvusException

    try:
        client = MilvusClient(uri=info.uri, timeout=5.0)
        try:
            client.list_collections(timeout=5.0)
        finally:
            client.close()
    except (MilvusException, OSError):
        return False
    return True


def _etcd(info: ServerInfo, call: str, body: dict) -> dict | None:
    """POST ``body`` to the embedded etcd's JSON gateway ``/v3/kv/CALL``; ``None`` on failure."""
    request = urllib.request.Request(
        f"http://{HOST}:{info.etcd_ports[0]}/v3/kv/{call}",
        data=json.dumps(body).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:  # noqa: S310 - loopback
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return None


def _drop_sessions(info: ServerInfo, keep: str | None = None) -> None:
    """Delete the components' session keys in the embedded etcd, but those of server ``keep``.

    Milvus 2.3.5 does not revoke them on SIGTERM and etcd renews every lease when it restarts,
    so a new server waits a full ``common.session.ttl`` (~55 s in all at 30 s) for the keys of
    a dead one. Safe because the folder's lock admits one live server: at start every key but
    the new server's own is stale. The ``id`` counter stays.
    """

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    found = _etcd(info, "range", {"key": b64(SESSIONS), "range_end": b64(SESSIONS[:-1] + "0")})
    for item in (found or {}).get("kvs", []):
        try:
            server_id = str(json.loads(base64.b64decode(item["value"]))["ServerID"])
        except (ValueError, KeyError, TypeError):
            continue  # the id counter
        if server_id != keep:
            _etcd(info, "deleterange", {"key": item["key"]})


def _own_server_id(info: ServerInfo) -> str | None:
    """The ServerID of ``info``'s process, once it has registered one (Milvus writes it to
    ``/tmp/milvus/server_id_PID`` as ``role-ID`` lines)."""
    path = Path(f"/tmp/milvus/server_id_{info.pid}")
    try:
        if path.stat().st_mtime < info.started - 1:
            return None  # an older process's file, the pid reused
        first = path.read_text(encoding="utf-8").split()
    except OSError:
        return None
    return first[0].rsplit("-", 1)[-1] if first else None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # start_new_session: the group id is the server's pid
    except (ProcessLookupError, PermissionError):
        pass


def _last_error(log: Path) -> str:
    """The last line of this start's part of ``log`` that looks like an error."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    lines = text[text.rfind("=== start") :].splitlines()[1:]
    for line in reversed(lines):
        if any(word in line.lower() for word in ("error", "panic", "fatal", "failed")):
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "no output"


# ── the launcher (run as 'python -I server.py JOB LOCK_FD' in the data folder) ─────────────


def _hold(port: int) -> socket.socket:
    """A listening socket on ``port`` (all interfaces), so that no port scan takes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", port))
    sock.listen()
    return sock


def _launch(job: dict, lock: int) -> None:
    """Write the wheel's configuration, unpack its binaries, and exec the server."""
    # the wheel, never this repository (mypy sees the folder)
    from milvus import MilvusServerConfig, _initialize_data_files  # type: ignore[attr-defined]

    data = job["data"]
    client_port, peer_port = job["etcd"]
    config = MilvusServerConfig(data_dir=data)
    # The wheel picks its ports by scanning upward from fixed defaults and refuses a port in
    # TIME_WAIT; the ports chosen here are set as plain config keys instead, and held while it
    # scans, so that it picks none of them for an internal service.
    config.set("proxy.port", job["port"])
    config.set("etcd.endpoints", f"{HOST}:{client_port}")
    if config.template_text.count(_ETCD_ANCHOR) != 1:
        raise SystemExit("unexpected milvus config template: no etcd.use.embed line")
    config.template_text = config.template_text.replace(
        _ETCD_ANCHOR, f"{_ETCD_ANCHOR}\n  config:\n    path:", 1
    )
    etcd_config = Path(data, ETCD_CONFIG)
    etcd_config.parent.mkdir(parents=True, exist_ok=True)
    client, peer = f"http://{HOST}:{client_port}", f"http://{HOST}:{peer_port}"
    etcd_config.write_text(
        f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: default={peer}\n",
        encoding="utf-8",
    )
    config.set("etcd.config.path", str(etcd_config))
    for service in SERVICES:
        config.set(f"{service}.ip", HOST)
    for key, value in SETTINGS.items():
        config.set(key, value)
    held = [_hold(port) for port in (job["port"], job["metrics"], client_port, peer_port)]
    config.resolve()  # chooses the internal ports, writes configs/milvus.yaml
    for sock in held:
        sock.close()
    _initialize_data_files(data)
    binary = os.path.join(data, "bin", "milvus")
    env = dict(os.environ)
    libraries = env.get("LD_LIBRARY_PATH", "")
    env.update(
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(job["metrics"]),
        MILVUS_RUN_DIR=os.path.join(data, "run"),
        LD_LIBRARY_PATH=":".join(filter(None, [os.path.dirname(binary), libraries])),
    )
    os.set_inheritable(lock, True)
    sys.stdout.flush()
    os.chdir(data)
    os.execve(binary, [binary, "run", "standalone"], env)


if __name__ == "__main__":
    _launch(json.loads(sys.argv[1]), int(sys.argv[2]))
