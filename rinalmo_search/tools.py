"""Running external programs (MAFFT, Infernal, BLAST+, HMMER, MMseqs2).

Everything that starts a process goes through :func:`run_tool`, so a missing program or a
failure always becomes a :class:`~rinalmo_search.errors.ToolError` that carries the command line
and the tail of the program's standard error.
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

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


def run_tool(
    command: Sequence[str | Path],
    *,
    cwd: str | Path | None = None,
    stdout_path: str | Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an external program and fail loudly.

    Arguments:
        command: program and arguments; the program is looked up on ``PATH``.
        cwd: working directory.
        stdout_path: write standard output to this file instead of capturing it.
        timeout: seconds before the program is killed.

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
                result = subprocess.run(
                    argv,
                    cwd=cwd,
                    stdout=handle,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
        else:
            result = subprocess.run(
                argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
            )
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else ""
        raise ToolError(
            f"{Path(argv[0]).name} did not finish within {timeout} s ({format_command(argv)})",
            command=argv,
            stderr=stderr or "",
        ) from None
    except OSError as error:
        raise ToolError(
            f"cannot run {format_command(argv)} ({error.strerror})", command=argv
        ) from None
    if result.returncode != 0:
        stderr = result.stderr or ""
        if not stderr.strip() and result.stdout:
            stderr = result.stdout  # Infernal writes its errors to stdout
        raise ToolError(
            f"{Path(argv[0]).name} failed with exit status {result.returncode} "
            f"({format_command(argv)})",
            command=argv,
            stderr=stderr,
        )
    return result


_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


@functools.cache
def tool_version(name: str) -> str:
    """Version string of an external program, ``"unknown"`` when it cannot be told.

    Raises:
        ToolError: the program is not on ``PATH``.
    """
    path = find_tool(name)
    if name.startswith("mafft"):
        probe = [path, "--version"]
    elif name.startswith("cm") or name in ("nhmmer", "hmmbuild"):
        probe = [path, "-h"]
    else:
        probe = [path, "-version"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (result.stdout or "") + (result.stderr or "")
    if name.startswith("cm"):
        match = re.search(r"INFERNAL\s+(\S+)", text)
    else:
        match = _VERSION.search(text)
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
