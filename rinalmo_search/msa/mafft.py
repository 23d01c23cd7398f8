"""The MAFFT draft alignment: X-INS-i when this MAFFT can run it, L-INS-i otherwise.

X-INS-i needs MAFFT's extensions (MXSCARNA), which Debian's ``mafft`` lacks while Bioconda's
has them. Support is decided by running X-INS-i on a two-sequence probe, once per process.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from Bio import SeqIO

from ..errors import ConfigError, ToolError
from ..tools import find_tool, format_command, run_tool

log = logging.getLogger(__name__)

ALIGNERS = ("auto", "xinsi", "linsi", "ginsi")
#: Human names of the aligners, as recorded in the output.
ALIGNER_NAMES = {
    "xinsi": "MAFFT X-INS-i",
    "linsi": "MAFFT L-INS-i",
    "ginsi": "MAFFT G-INS-i",
    "none": "none (one sequence)",
}
LINSI_OPTIONS = ("--localpair", "--maxiterate", "1000")
#: G-INS-i assumes the sequences are homologous end to end. On 21 Rfam families (up to 40 seed
#: members each) its drafts gave final alignments a mean SPS of 0.875 against the seeds, against
#: 0.866 for L-INS-i; with ``evaluate-msa`` (cmalign --notrunc) G-INS-i drafts gave 0.922
#: against 0.915 on 16 families x 2 queries but 0.795 against 0.804 on 6 families x 3 (neither
#: the sets' length spread nor their size told which would win). L-INS-i stays the fallback
#: because search hits may carry flanks.
GINSI_OPTIONS = ("--globalpair", "--maxiterate", "1000")
#: Where Debian installs the per-strategy MAFFT scripts (not on PATH).
_EXTRA_SCRIPT_DIRS = (Path("/usr/lib/mafft/bin"),)
_PROBE = (
    ">a\nGGGCGAUAGCUCAGUUGGUAGAGCACCUCGCUUGCAAGCGAGGGGUCCGCGGUUCGAAUCCGCUUCGCCCA\n"
    ">b\nGCCCGGAUAGCUCAGUCGGUAGAGCAUCAGACUUUUAAUCUGAGGGUCCAGGGUUCAAGUCCCUGUUCGGGCGCA\n"
)


@dataclass
class DraftAlignment:
    """A MAFFT draft.

    Attributes:
        rows: aligned sequences (``-`` for gaps), in input order, original residues.
        aligner: ``"xinsi"``, ``"linsi"`` or ``"none"`` (a single sequence is its own draft).
        command: the MAFFT command line that ran (empty for ``"none"``).
        warnings: messages for the user (e.g. the X-INS-i fallback).
    """

    rows: list[str]
    aligner: str
    command: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _xinsi_program() -> str | None:
    found = shutil.which("mafft-xinsi")
    if found:
        return found
    for folder in _EXTRA_SCRIPT_DIRS:
        candidate = folder / "mafft-xinsi"
        if candidate.is_file() and shutil.which("mafft"):
            return str(candidate)
    return None


@functools.lru_cache(maxsize=1)
def xinsi_support() -> tuple[bool, str]:
    """Whether this MAFFT runs X-INS-i, and why not.

    Returns:
        ``(True, program path)`` when a probe alignment succeeded, else ``(False, reason)``.
    """
    program = _xinsi_program()
    if program is None:
        return False, "no mafft-xinsi program found on PATH"
    with tempfile.TemporaryDirectory(prefix="rinalmo-xinsi-probe-") as folder:
        probe = Path(folder) / "probe.fa"
        probe.write_text(_PROBE)
        try:
            result = run_tool([program, "--quiet", probe], timeout=120)
        except ToolError as error:
            reason = "MXSCARNA extension missing" if "MXSCARNA" in error.stderr else str(error)
            return False, f"{program} cannot run ({reason})"
    if result.stdout.count(">") != 2:
        return False, f"{program} gave no alignment for a probe"
    return True, program


def resolve_aligner(aligner: str) -> tuple[str, list[str]]:
    """Turn ``auto | xinsi | linsi | ginsi`` into the aligner that will run.

    Returns:
        ``(aligner, warnings)``.

    Raises:
        ConfigError: unknown aligner name.
        ToolError: ``xinsi`` requested but this MAFFT cannot run it.
    """
    if aligner not in ALIGNERS:
        raise ConfigError(f"Invalid aligner {aligner!r} (expected one of {', '.join(ALIGNERS)})")
    if aligner in ("linsi", "ginsi"):
        return aligner, []
    supported, detail = xinsi_support()
    if supported:
        return "xinsi", []
    if aligner == "xinsi":
        raise ToolError(f"MAFFT X-INS-i was requested but is not available: {detail}")
    message = f"MAFFT X-INS-i not available ({detail}); fell back to L-INS-i"
    _warn_once(message)
    return "linsi", [message]


@functools.cache
def _warn_once(message: str) -> None:
    """Log a warning once per process (evaluations run the pipeline hundreds of times)."""
    log.warning(message)


def mafft_command(aligner: str, fasta: Path, threads: int) -> list[str]:
    """The MAFFT command line for ``aligner`` (``xinsi``, ``linsi`` or ``ginsi``) on ``fasta``."""
    common = ["--thread", str(threads), "--quiet", "--nuc", "--inputorder"]
    if aligner == "xinsi":
        supported, program = xinsi_support()
        if not supported:
            raise ToolError(f"MAFFT X-INS-i is not available: {program}")
        return [program, *common, str(fasta)]
    options = GINSI_OPTIONS if aligner == "ginsi" else LINSI_OPTIONS
    return [find_tool("mafft"), *options, *common, str(fasta)]


def refill(aligned: str, residues: str, name: str) -> str:
    """Put ``residues`` back into the gap pattern of ``aligned`` (a tool may recode letters).

    Raises:
        ToolError: the row does not hold exactly ``len(residues)`` residues.
    """
    count = sum(char not in "-.~" for char in aligned)
    if count != len(residues):
        raise ToolError(
            f"aligned row {name!r} has {count} residues, expected {len(residues)} "
            "(the aligner changed the sequence)"
        )
    remaining = iter(residues)
    out = ["-" if char in "-.~" else next(remaining) for char in aligned]
    return "".join(out)


def draft_alignment(
    sequences: list[str], work_dir: Path, *, aligner: str = "auto", threads: int = 1
) -> DraftAlignment:
    """Align unaligned sequences with MAFFT.

    Arguments:
        sequences: ungapped RNA sequences (the row order of the result).
        work_dir: folder for MAFFT's input and output files.
        aligner: ``auto`` (X-INS-i if available, else L-INS-i with a warning), ``xinsi``,
            ``linsi`` or ``ginsi``.
        threads: MAFFT ``--thread``.

    Returns:
        The draft; one sequence is returned as is, without running MAFFT.

    Raises:
        ToolError: MAFFT missing or failing; ``xinsi`` requested but unavailable.
        ConfigError: unknown aligner.
    """
    used, warnings = resolve_aligner(aligner)
    if len(sequences) == 1:
        return DraftAlignment(rows=list(sequences), aligner="none", warnings=warnings)
    fasta = work_dir / "draft_input.fasta"
    # Neutral names: MAFFT and Infernal truncate or mangle long or odd identifiers.
    fasta.write_text("".join(f">s{i}\n{tool_residues(s)}\n" for i, s in enumerate(sequences)))
    command = mafft_command(used, fasta, threads)
    output = work_dir / "draft.fasta"
    log.debug("draft alignment: %s", format_command(command))
    run_tool(command, cwd=work_dir, stdout_path=output)
    aligned = {record.id: str(record.seq) for record in SeqIO.parse(output, "fasta")}
    if len(aligned) != len(sequences):
        raise ToolError(
            f"MAFFT returned {len(aligned)} sequences, expected {len(sequences)}",
            command=command,
        )
    rows = [refill(aligned[f"s{i}"], s, f"s{i}") for i, s in enumerate(sequences)]
    return DraftAlignment(rows=rows, aligner=used, command=command, warnings=warnings)


def tool_residues(sequence: str) -> str:
    """Residues the external tools all read: inosine (``I``) is given to them as ``N``."""
    return sequence.replace("I", "N")
