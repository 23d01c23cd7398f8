"""Start a real Galaxy server (from PyPI, in its own venv) on 127.0.0.1 for the tool tests.

The server is configured to stay offline: requirements are resolved from ``PATH`` (no conda, no
containers), SQLite, the local job runner, no Celery. Galaxy's local runner starts jobs with a
clean environment (only ``HOME``, ``PATH``, ``TMPDIR``, ``LC_CTYPE`` pass), so the settings the
wrappers read (``RINALMO_SEARCH_DB`` and friends) go into the job configuration's ``env``
entries, exactly where a Galaxy administrator puts them; the project's ``.venv/bin`` is on the
server's ``PATH`` so that jobs find ``rinalmo-search``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE_DIR = REPO_ROOT / "galaxy_tools" / "rinalmo_search"
TEST_DATA = SUITE_DIR / "test-data"
#: The project's venv, whose bin folder holds rinalmo-search and planemo.
VENV_BIN = Path(sys.executable).parent
GALAXY_VENV = Path(os.environ.get("RINALMO_GALAXY_VENV", REPO_ROOT / ".venv-galaxy"))
STARTUP_TIMEOUT_S = 600.0


def tool_files() -> list[Path]:
    """Every tool XML of the suite (``macros.xml`` excluded)."""
    return sorted(path for path in SUITE_DIR.glob("*.xml") if path.name != "macros.xml")


@dataclass(frozen=True)
class GalaxyServer:
    """A running Galaxy: its URL, an admin key, a regular user's key, and its log file."""

    url: str
    admin_key: str
    user_key: str
    log_path: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    workdir: Path,
    tool_files: Sequence[Path],
    data_table_conf: Path,
    admin_key: str,
    job_env: Mapping[str, str],
) -> Path:
    """Write ``galaxy.yml`` and the files it names into ``workdir``; return the config path."""
    tool_conf = workdir / "tool_conf.xml"
    tools = "\n".join(f'    <tool file="{path}"/>' for path in tool_files)
    tool_conf.write_text(
        f'<toolbox monitor="false">\n  <section id="rinalmo" name="RiNALMo-Search">\n'
        f"{tools}\n  </section>\n</toolbox>\n",
        encoding="utf-8",
    )
    resolvers = workdir / "dependency_resolvers_conf.xml"
    resolvers.write_text("<dependency_resolvers/>\n", encoding="utf-8")
    data = workdir / "data"
    settings = {
        "data_dir": str(data),
        "file_path": str(data / "objects"),
        "new_file_path": str(data / "tmp"),
        "job_working_directory": str(data / "jobs"),
        "tool_data_path": str(workdir / "tool-data"),
        "tool_dependency_dir": str(data / "dependencies"),
        "database_connection": f"sqlite:///{data / 'universe.sqlite'}?isolation_level=IMMEDIATE",
        "tool_config_file": str(tool_conf),
        "shed_tool_config_file": str(workdir / "shed_tool_conf.xml"),
        "tool_data_table_config_path": str(data_table_conf),
        "shed_tool_data_table_config": str(workdir / "shed_tool_data_table_conf.xml"),
        "dependency_resolvers_config_file": str(resolvers),
        "conda_auto_init": False,
        "conda_auto_install": False,
        "involucro_auto_init": False,
        "enable_mulled_containers": False,
        "enable_celery_tasks": False,
        "enable_beta_markdown_export": False,
        "watch_tools": "false",
        "watch_tool_data_dir": "false",
        "check_migrate_databases": True,
        "id_secret": secrets.token_hex(16),
        "bootstrap_admin_api_key": admin_key,
        "admin_users": "admin@example.org",
        "allow_user_creation": True,
        "require_login": False,
        "allow_path_paste": True,
        "cleanup_job": "never",
        "use_cached_dependency_manager": False,
        "log_level": "INFO",
        "database_auto_migrate": True,
        "display_servers": "",
        "sentry_dsn": None,
        # One local destination whose env entries every job exports (admin-style settings).
        "job_config": {
            "runners": {
                "local": {"load": "galaxy.jobs.runners.local:LocalJobRunner", "workers": 2}
            },
            "execution": {
                "default": "local_env",
                "environments": {
                    "local_env": {
                        "runner": "local",
                        "env": [{"name": name, "value": value} for name, value in job_env.items()],
                    }
                },
            },
        },
    }
    shed_conf = workdir / "shed_tool_conf.xml"
    shed_conf.write_text(
        f'<toolbox tool_path="{workdir / "shed_tools"}">\n</toolbox>\n', encoding="utf-8"
    )
    (workdir / "shed_tool_data_table_conf.xml").write_text("<tables/>\n", encoding="utf-8")
    (workdir / "tool-data").mkdir(exist_ok=True)
    for folder in ("objects", "tmp", "jobs"):
        (data / folder).mkdir(parents=True, exist_ok=True)
    config = workdir / "galaxy.yml"
    # JSON is valid YAML: no YAML library needed in this process.
    config.write_text(json.dumps({"galaxy": settings}, indent=2), encoding="utf-8")
    return config


def api(url: str, path: str, key: str, payload: Mapping[str, object] | None = None) -> object:
    """GET (or POST ``payload`` as JSON) ``url/api/path`` with ``key``; return the decoded JSON."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{url}/api/{path}",
        data=data,
        headers={"x-api-key": key, "Content-Type": "application/json"},
        method="POST" if payload is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read().decode())


def wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> float:
    """Poll ``/api/version`` until it answers; return the seconds waited.

    Raises:
        RuntimeError: the process exited, or the server did not answer in time (log tail given).
    """
    start = time.monotonic()
    while time.monotonic() - start < STARTUP_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(
                f"Galaxy exited with code {process.returncode} during startup; log tail:\n"
                + tail(log_path)
            )
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2)
    raise RuntimeError(
        f"Galaxy did not answer at {url} within {STARTUP_TIMEOUT_S:.0f} s; log tail:\n"
        + tail(log_path)
    )


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it has not exited in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@contextmanager
def running_galaxy(
    workdir: Path,
    tool_files: Sequence[Path],
    data_table_conf: Path,
    job_env: Mapping[str, str],
) -> Iterator[GalaxyServer]:
    """Run Galaxy on a free loopback port for the duration of the ``with`` block.

    Arguments:
        workdir: empty folder for the configuration, database, datasets and job folders.
        tool_files: tool XML files to load.
        data_table_conf: a ``tool_data_table_conf.xml`` for the tools' data tables.
        job_env: variables every job exports (written into the job configuration).

    Yields:
        The running server; it is stopped (process group terminated) when the block exits.
    """
    galaxy_web = GALAXY_VENV / "bin" / "galaxy-web"
    if not galaxy_web.exists():
        raise RuntimeError(
            f"{galaxy_web} not found (expected a Galaxy venv: run tests/galaxy/setup_galaxy.sh)"
        )
    admin_key = secrets.token_hex(16)
    config = write_config(workdir, tool_files, data_table_conf, admin_key, job_env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "galaxy.log"
    env = dict(os.environ)
    # Galaxy's own jobs (uploads, metadata) run `python` from VIRTUAL_ENV; tool commands find
    # rinalmo-search in the project's venv, next on PATH.
    env["VIRTUAL_ENV"] = str(GALAXY_VENV)
    env["PATH"] = os.pathsep.join([str(GALAXY_VENV / "bin"), str(VENV_BIN), env.get("PATH", "")])
    env["TMPDIR"] = str(workdir / "data" / "tmp")
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [str(galaxy_web), "-c", str(config), "-b", f"127.0.0.1:{port}"],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # A SIGTERM to this process (a CI timeout) must still stop the server: turn it into an
    # exception so that the `finally` below runs.
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        seconds = wait_until_up(url, process, log_path)
        log.info("Galaxy answered at %s after %.0f s", url, seconds)
        user = api(
            url,
            "users",
            admin_key,
            {"username": "tester", "email": "tester@example.org", "password": secrets.token_hex(8)},
        )
        assert isinstance(user, dict), f"expected a user object from POST /api/users, got {user!r}"
        user_key = api(url, f"users/{user['id']}/api_key", admin_key, {})
        assert isinstance(user_key, str), f"expected an API key string, got {user_key!r}"
        yield GalaxyServer(url=url, admin_key=admin_key, user_key=user_key, log_path=log_path)
    finally:
        stop(process)
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"terminated by signal {signum} while Galaxy was running")
