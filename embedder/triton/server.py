"""A local CPU ``tritonserver``: find the binary that ``nvidia-pytriton`` bundles, run it, stop it.

PyPI has no Triton with a PyTorch backend; ``nvidia-pytriton`` ships a real ``tritonserver``
(2.51) with the Python backend only. This module arranges what that binary needs — a backend
folder holding ``libtriton_python.so``, ``triton_python_backend_utils.py`` and the stub built
for this Python, ``LD_LIBRARY_PATH`` pointing at this interpreter's ``libpython`` and the
wheel's bundled libraries, and this environment's ``bin`` first on ``PATH`` so the stub imports
the same torch — and runs the server on loopback with free ports, selecting the Python-backend
configuration (``configs/cpu_python.pbtxt``) of each model. The ``serve`` command and the test
fixture both use :class:`TritonServer`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rinalmo_search.errors import ConfigError, InferenceError

log = logging.getLogger(__name__)

# "E1125 17:40:15.688930 10134 main.cc:245] " prefixes Triton's error lines
_ERROR_LINE = re.compile(r"^E\d{4} [\d:.]+ +\d+ [^\]]+\] ")

# logged as an error on every machine without a GPU
_CPU_NOISE = "CudaDriverHelper has not been initialized"

#: Name of the CPU (Python backend) configuration inside each model's ``configs/`` folder.
CPU_CONFIG_NAME = "cpu_python"


@dataclass(frozen=True)
class TritonDistribution:
    """Where the pieces of the bundled Triton live.

    Attributes:
        binary: the ``tritonserver`` executable.
        python_backend: folder of ``libtriton_python.so`` and ``triton_python_backend_utils.py``.
        stub: ``triton_python_backend_stub`` built for this Python version.
        libs: the wheel's folder of bundled shared libraries.
    """

    binary: Path
    python_backend: Path
    stub: Path
    libs: Path


def find_tritonserver() -> TritonDistribution:
    """Locate the ``tritonserver`` bundled with ``nvidia-pytriton``.

    Raises:
        ConfigError: ``nvidia-pytriton`` is not installed, or lacks a piece (the message names it).
    """
    try:
        import pytriton  # noqa: F401 - only its location is needed
    except ImportError:
        raise ConfigError(
            "Cannot find a tritonserver: the Python package 'nvidia-pytriton' is not installed "
            "(pip install 'nvidia-pytriton>=0.7,<0.8')"
        ) from None
    root = Path(sys.modules["pytriton"].__file__ or "").resolve().parent / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    dist = TritonDistribution(
        binary=root / "bin" / "tritonserver",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=root.parent.parent / "nvidia_pytriton.libs",
    )
    for label, path in (
        ("server binary", dist.binary),
        ("Python backend", dist.python_backend / "libtriton_python.so"),
        (f"Python {version} backend stub", dist.stub),
    ):
        if not path.exists():
            raise ConfigError(f"nvidia-pytriton is incomplete: no {label} at {path}")
    return dist


def check_runnable(timeout_s: float = 30.0) -> str | None:
    """Why the bundled ``tritonserver`` cannot run here, or ``None`` when it can.

    Runs ``tritonserver --help`` with the server environment: a missing package, a missing
    piece, or a binary the system cannot load (old glibc, other CPU architecture) is reported.
    """
    try:
        dist = find_tritonserver()
    except ConfigError as error:
        return str(error)
    try:
        result = subprocess.run(
            [str(dist.binary), "--help"],
            env=server_environment(dist),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except OSError as error:
        return f"cannot execute {dist.binary}: {error}"
    except subprocess.TimeoutExpired:
        return f"{dist.binary} --help did not finish in {timeout_s:g} s"
    output = (result.stdout + result.stderr).decode(errors="replace")
    if "--model-repository" not in output:
        tail = " | ".join(output.strip().splitlines()[-3:])
        return f"{dist.binary} does not run here (exit code {result.returncode}): {tail}"
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server when the process that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort (non-Linux)
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_environment(dist: TritonDistribution) -> dict[str, str]:
    """Environment for the server: this Python's ``libpython`` and this venv's ``bin`` first."""
    env = os.environ.copy()
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    parts = [p for p in (libdir, str(dist.libs), env.get("LD_LIBRARY_PATH", "")) if p]
    env["LD_LIBRARY_PATH"] = ":".join(parts)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # the backend runs torch in its own process: keep it from grabbing every core
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class TritonServer:
    """A ``tritonserver`` child process serving a model repository on CPU over gRPC.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Arguments:
        repository: the model repository (``model_repository/``).
        host: address to bind (loopback by default; use ``0.0.0.0`` to serve other machines).
        grpc_port: gRPC port; ``None`` picks a free one.
        model_config_name: configuration each model loads from its ``configs/`` folder.
        log_path: file for the server's log; default a temporary file, removed on stop.
        startup_timeout_s: how long :meth:`start` waits for the server and models to be ready.
        extra_args: more ``tritonserver`` options.

    The server gets SIGTERM when the thread that started it dies (Linux ``PDEATHSIG``), so a
    killed test run or ``serve`` command leaves no server behind: start it from a thread that
    outlives it (the main thread).
    """

    def __init__(
        self,
        repository: Path | str,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = None,
        model_config_name: str = CPU_CONFIG_NAME,
        log_path: Path | str | None = None,
        startup_timeout_s: float = 120.0,
        extra_args: list[str] | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
            raise ConfigError(f"Model repository not found: {self.repository} (expected a folder)")
        self.host = host
        self.grpc_port = grpc_port
        self.model_config_name = model_config_name
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args or [])
        self._log_path = Path(log_path) if log_path else None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    @property
    def url(self) -> str:
        """``host:port`` of the gRPC endpoint (loopback address when bound to all interfaces)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, if any."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """Exit code of a server that has exited; ``None`` while it runs (or before start)."""
        return None if self._process is None else self._process.poll()

    @property
    def log_path(self) -> Path | None:
        """The server's log file."""
        return self._log_path

    def command(self, backend_directory: Path) -> list[str]:
        """The ``tritonserver`` command line (for logs and the ``serve`` command)."""
        dist = find_tritonserver()
        return [
            str(dist.binary),
            f"--model-repository={self.repository}",
            f"--model-config-name={self.model_config_name}",
            f"--backend-directory={backend_directory}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            "--allow-http=false",
            "--allow-metrics=false",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0",
            "--exit-timeout-secs=5",
            "--strict-readiness=true",
            *self.extra_args,
        ]

    def _backend_directory(self, dist: TritonDistribution) -> Path:
        # Triton looks for <backend-directory>/python/{libtriton_python.so, stub, utils.py}
        assert self._workdir is not None
        python_dir = self._workdir / "backends" / "python"
        python_dir.mkdir(parents=True)
        for item in dist.python_backend.iterdir():
            if item.is_file():
                (python_dir / item.name).symlink_to(item)
        shutil.copy2(dist.stub, python_dir / "triton_python_backend_stub")
        return python_dir.parent

    def start(self) -> TritonServer:
        """Start the server and wait until it and its models are ready.

        Raises:
            ConfigError: the bundled binary is missing.
            InferenceError: the server exited or was not ready in time (the message holds
                the end of its log).
        """
        if self._process is not None:
            return self
        dist = find_tritonserver()
        self._workdir = Path(tempfile.mkdtemp(prefix="rinalmo-triton-"))
        backend_directory = self._backend_directory(dist)
        if self.grpc_port is None:
            self.grpc_port = free_port(self.host if self.host not in ("0.0.0.0", "") else "")
        if self._log_path is None:
            self._log_path = self._workdir / "tritonserver.log"
        command = self.command(backend_directory)
        log.info("starting %s", " ".join(command))
        self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            command,
            stdout=self._log_file,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(dist),
            start_new_session=True,  # its own process group: stop() also ends the stubs
            preexec_fn=_die_with_parent,  # never outlive a killed pytest or 'serve'
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("tritonserver ready at %s (pid %d)", self.url, self._process.pid)
        return self

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server log."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def log_errors(self, count: int = 3) -> str:
        """The server's last error lines, without their prefixes, on one line.

        Falls back to the last log lines when the log holds no error line.
        """
        lines = self.log_tail(400).splitlines()
        errors = [_ERROR_LINE.sub("", line).strip().strip('"').strip() for line in lines
                  if _ERROR_LINE.match(line) and _CPU_NOISE not in line]  # fmt: skip
        chosen = errors[-count:] if errors else [line.strip() for line in lines[-count:]]
        return " | ".join(line for line in chosen if line) or "(empty log)"

    def _log_hint(self) -> str:
        # the default log lives in the work folder, which stop() removes: name only kept logs
        if self._log_path is None or (
            self._workdir is not None and self._workdir in self._log_path.parents
        ):
            return ""
        return f" (log {self._log_path})"

    def _wait_ready(self) -> None:
        import tritonclient.grpc as grpcclient

        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        client = grpcclient.InferenceServerClient(self.url)
        try:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise InferenceError(
                        f"tritonserver exited with code {code} while starting"
                        f"{self._log_hint()}: {self.log_errors()}"
                    )
                try:
                    if client.is_server_ready(client_timeout=2.0):
                        return
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                if time.monotonic() > deadline:
                    raise InferenceError(
                        f"tritonserver at {self.url} was not ready after "
                        f"{self.startup_timeout_s:.0f} s{self._log_hint()}: {self.log_errors()}"
                    )
                time.sleep(0.25)
        finally:
            client.close()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its process group), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``); safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("tritonserver (pid %d) ignored SIGTERM; killing it", process.pid)
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            # the Python-backend stubs share the group; make sure none outlives the server
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        if self._workdir is not None:
            # the default log lives in the work folder and goes with it; errors quoted its tail
            if self._log_path is not None and self._workdir in self._log_path.parents:
                self._log_path = None
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
