"""Running external programs (MAFFT, Infernal, BLAST+, HMMER, MMseqs2).

Everything that starts a process goes through :func:`run_tool`, so a missing program or a
failure always becomes a :class:`~rinalmo_search.errors.ToolError` that carries the command line
and the tail of the program's standard error.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .errors import ToolError

log = logging.getLogger(__name__)

#: Debian / Bioconda package that provides each program, for the "not found" message.
PACKAGES = {
    "mafft": "mafft",
    "mafft-xinsi": "mafft (with its extensions, as Bioconda builds it)",
    "cmbuild": "infernal",
    "cmalign": "infernal",
    "cmsearch": "infernal",
    "cmcalibrate": "infernal",
    "makeblastdb": "ncbi-blast+",
    "blastn": "ncbi-blast+",
    "nhmmer": "hmmer",
    "mmseqs": "mmseqs2",
}


def find_tool(name: str) -> str:
    """Absolute path of program ``name`` on ``PATH``.

    Raises:
        ToolError: the program is not on ``PATH``.
    """
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, name)
        raise ToolError(
            f"required program {name!r} not found on PATH (install the {package!r} package)",
            command=[name],
        )
    return path


def format_command(command: Sequence[str | Path]) -> str:
    """A command as one shell-quoted line (for logs and ``#=GF`` records)."""
    return shlex.join(str(part) for part in command)


#: Seconds a program's process group gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 2.0


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (what Galaxy, Slurm and ``kill`` send) or SIGHUP (the
    terminal went away) inside :func:`sigterm_raises`; handled like Ctrl-C, so ``finally``
    blocks and cleanup run."""


#: Signals :func:`sigterm_raises` turns into :class:`Terminated`. SIGHUP too: programs run in a
#: session of their own (see :func:`run_tool`), so a closed terminal no longer reaches them.
_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` instead of ending the
    process at once.

    Python's default action for them exits without running ``finally`` blocks, which leaves
    temporary folders behind and child programs running. Only the main thread can set signal
    handlers; elsewhere this does nothing, and a signal whose handler is already set (by an
    outer call, or ignored as under ``nohup``) is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in _ENDING_SIGNALS if signal.getsignal(s) is signal.SIG_DFL]
    for signum in taken:
        signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """End a program and everything it started: SIGTERM to its process group, then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # members that ignored SIGTERM or outlived it
    process.wait()


def _run(
    argv: list[str],
    *,
    cwd: str | Path | None,
    stdout: IO[str] | int,
    timeout: float | None,
    input_text: str | None,
) -> tuple[int, str, str]:
    """Run ``argv`` in its own process group; stop the whole group on any exception.

    Returns:
        ``(exit status, stdout, stderr)``; ``stdout`` is ``""`` when it goes to a file.

    Raises:
        subprocess.TimeoutExpired: past ``timeout`` (the group is stopped first).
        OSError: the program cannot start.
        KeyboardInterrupt: Ctrl-C, or :class:`Terminated` (the group is stopped first).
    """
    with sigterm_raises():
        process = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
            stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        with process:
            try:
                out, err = process.communicate(input_text, timeout=timeout)
            except BaseException:
                _stop_group(process)
                raise
    return process.returncode, out or "", err or ""


def run_tool(
    command: Sequence[str | Path],
    *,
    cwd: str | Path | None = None,
    stdout_path: str | Path | None = None,
    timeout: float | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an external program and fail loudly.

    The program runs in a session (and process group) of its own. When it times out, or this
    process gets Ctrl-C, SIGTERM or SIGHUP meanwhile, the whole group (the program and
    whatever it started, e.g. MAFFT's helpers) gets SIGTERM and, :data:`STOP_GRACE_SECONDS`
    later, SIGKILL; then the exception goes on (``KeyboardInterrupt``/:class:`Terminated` for
    the signals), so the callers' cleanup runs. Nothing is left running. (SIGKILL of this
    process alone cannot be caught: then the program runs on.)

    Arguments:
        command: program and arguments; the program is looked up on ``PATH``.
        cwd: working directory.
        stdout_path: write standard output to this file instead of capturing it.
        timeout: seconds before the program is killed.
        input_text: the program's standard input (default: none, ``/dev/null``).

    Returns:
        The completed process (``stdout`` is ``""`` when ``stdout_path`` is given).

    Raises:
        ToolError: the program is missing, cannot start, times out or exits non-zero; the
            message holds the exit status and the last lines of its standard error.
    """
    argv = [str(part) for part in command]
    argv[0] = find_tool(argv[0]) if "/" not in argv[0] else argv[0]
    log.debug("running %s", format_command(argv))
    try:
        if stdout_path is not None:
            with open(stdout_path, "w", encoding="utf-8") as handle:
                code, stdout, stderr = _run(
                    argv, cwd=cwd, stdout=handle, timeout=timeout, input_text=input_text
                )
        else:
            code, stdout, stderr = _run(
                argv, cwd=cwd, stdout=subprocess.PIPE, timeout=timeout, input_text=input_text
            )
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"{Path(argv[0]).name} did not finish within {timeout} s ({format_command(argv)})",
            command=argv,
        ) from None
    except OSError as error:
        raise ToolError(
            f"cannot run {format_command(argv)} ({error.strerror})", command=argv
        ) from None
    if code != 0:
        if not stderr.strip() and stdout:
            stderr = stdout  # Infernal writes its errors to stdout
        raise ToolError(
            f"{Path(argv[0]).name} failed with exit status {code} ({format_command(argv)})",
            command=argv,
            stderr=stderr,
        )
    return subprocess.CompletedProcess(argv, code, stdout, stderr)


_NUMBER = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


def _version_probe(program: str) -> tuple[list[str], re.Pattern[str]]:
    """How ``program`` tells its version: the arguments, and where the version is in its output."""
    if program.startswith("mafft"):
        return ["--version"], _NUMBER  # "v7.505 (2022/Apr/10)"
    if program.startswith("cm"):
        return ["-h"], re.compile(r"INFERNAL\s+(\S+)")  # "# INFERNAL 1.1.4 (Dec 2020)"
    if program.startswith(("nhmmer", "hmm", "jackhmmer", "phmmer")):
        return ["-h"], re.compile(r"HMMER\s+(\S+)")  # "# HMMER 3.3.2 (Nov 2020); ..."
    if program == "mmseqs":
        return ["version"], re.compile(r"^\s*(\S+)")  # "14-7e284+ds-1+b2"
    return ["-version"], _NUMBER  # BLAST+: "blastn: 2.12.0+"


@functools.cache
def tool_version(name: str) -> str:
    """Version of an external program (e.g. ``"2.12.0"`` for blastn), ``"unknown"`` when it
    cannot be told: the project's one version probe.

    Arguments:
        name: the program, on ``PATH`` or as a path.

    Raises:
        ToolError: the program is not found.
    """
    path = find_tool(name) if "/" not in name else name
    arguments, pattern = _version_probe(Path(name).name)
    try:
        _, out, err = _run([path, *arguments], cwd=None, stdout=subprocess.PIPE, timeout=30,
                           input_text=None)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = pattern.search(out + err)
    return match.group(1) if match else "unknown"


@functools.cache
def viennarna_version() -> str:
    """Version of the ViennaRNA Python package (``import RNA``)."""
    try:
        import RNA
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise ToolError(
            "the ViennaRNA Python package is not installed (pip install viennarna)"
        ) from error
    return str(getattr(RNA, "__version__", "unknown"))
