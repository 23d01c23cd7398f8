"""Infernal steps: ``cmbuild`` a covariance model from the draft, ``cmalign`` sequences to it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..tools import find_tool, format_command, run_tool

log = logging.getLogger(__name__)

#: cmalign's own default DP matrix limit (MB per thread).
CMALIGN_DEFAULT_MXSIZE = 1028
#: Never ask for more than this per thread, whatever the machine has.
CMALIGN_MAX_MXSIZE = 32768
#: cmalign options of every alignment. ``--notrunc``: no truncated (fragment) alignment. Hits
#: are whole database entries, not reads cut inside the RNA; with truncation allowed cmalign
#: sometimes explains a divergent end as a fragment boundary and leaves it unaligned. On 6 Rfam
#: families x 3 queries (``evaluate-msa``) the SPS against the seeds rose from 0.790 to 0.804
#: for our top-100 sets and from 0.863 to 0.869 for BLASTn's; ``-g`` (global) and
#: ``--nonbanded`` changed nothing measurable.
CMALIGN_OPTIONS: tuple[str, ...] = ("--notrunc",)
#: Fewer sampled sequences for calibrating the model's HMM filter (default 200 each). The filter's
#: E-value parameters serve cmsearch/cmscan only; cmalign's output is identical with or without
#: them, and on a 1,500-column model this takes cmbuild from ~60 s to ~12 s.
CMBUILD_ALIGN_ONLY_OPTIONS = ("--EmN", "10", "--EvN", "10", "--ElfN", "10", "--EgfN", "10")


def available_memory_mb() -> int:
    """Available memory in MB (``MemAvailable``), or 4096 when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (ValueError, OSError, AttributeError):
        return 4096


def default_mxsize(threads: int) -> int:
    """The ``--mxsize`` we pass to cmalign: half the available memory shared by the threads.

    Never below cmalign's own default (1028 MB), never above 32 GB per thread. Long sequences
    (several kb) need more than the default; rather than splitting them, which would break the
    structure the model describes, we raise the limit to what the machine can give.
    """
    share = available_memory_mb() // 2 // max(1, threads)
    return max(CMALIGN_DEFAULT_MXSIZE, min(CMALIGN_MAX_MXSIZE, share))


def cmbuild(stockholm: Path, cm: Path) -> list[str]:
    """Build a covariance model (for cmalign only) from a Stockholm alignment with ``#=GC SS_cons``.

    The model's HMM filter is calibrated with few samples (:data:`CMBUILD_ALIGN_ONLY_OPTIONS`):
    do not use it for cmsearch.

    (``cmbuild --refine`` is not used: its expectation-maximisation has no iteration limit and
    was seen cycling for 200 rounds on four sequences; the pipeline iterates itself, bounded.)

    Returns:
        The command line that ran.

    Raises:
        ToolError: cmbuild missing or failing.
    """
    command = [find_tool("cmbuild"), "-F", *CMBUILD_ALIGN_ONLY_OPTIONS, str(cm), str(stockholm)]
    log.debug("covariance model: %s", format_command(command))
    run_tool(command)
    return command


def cmalign(
    cm: Path,
    fasta: Path,
    output: Path,
    *,
    threads: int = 1,
    mxsize: float | None = None,
    options: tuple[str, ...] = CMALIGN_OPTIONS,
) -> list[str]:
    """Align unaligned sequences to a covariance model, writing Stockholm.

    Arguments:
        cm: the model from :func:`cmbuild`.
        fasta: unaligned sequences.
        output: Stockholm output file.
        threads: ``--cpu``.
        mxsize: DP matrix limit in MB per thread (``--mxsize``); ``None`` picks
            :func:`default_mxsize`.
        options: further cmalign options (default :data:`CMALIGN_OPTIONS`).

    Returns:
        The command line that ran.

    Raises:
        ToolError: cmalign missing or failing (e.g. a matrix above ``--mxsize``).
    """
    size = default_mxsize(threads) if mxsize is None else mxsize
    command = [
        find_tool("cmalign"), "--cpu", str(threads), "--mxsize", str(size), *options,
        "--outformat", "Stockholm", "-o", str(output), str(cm), str(fasta),
    ]
    log.debug("final alignment: %s", format_command(command))
    run_tool(command)
    return command
