"""``build_msa``: unaligned FASTA → structure-aware Stockholm MSA.

MAFFT draft (X-INS-i, or L-INS-i when this MAFFT lacks the extensions) → RNAalifold consensus
structure → Stockholm with ``#=GC SS_cons`` → ``cmbuild -F`` → ``cmalign`` of the unaligned
sequences → final Stockholm with ``#=GC SS_cons``, the query (first input record) first, and
``#=GF`` lines recording each tool, its version, its options and the aligner that ran.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, InputError, ToolError
from ..seqio import STDIO, SequenceRecord, check_output, open_output, read_fasta
from ..tools import find_tool, sigterm_raises, tool_version, viennarna_version
from .infernal import CMALIGN_OPTIONS, cmalign, cmbuild
from .mafft import ALIGNER_NAMES, ALIGNERS, draft_alignment, tool_residues
from .stockholm import GAPS, Stockholm, read_stockholm, write_stockholm
from .structure import ALIFOLD_OPTIONS, consensus_structure

log = logging.getLogger(__name__)

#: cmbuild → cmalign rounds. On 8 Rfam families (up to 30 seed members each) three rounds
#: raised the SPS against the seeds from 0.885 (one round) to 0.892. With ``evaluate-msa``
#: (6 families x 3 queries, top-100 sets, before --notrunc) one round gave 0.777, three 0.790,
#: six 0.793; six rounds with --notrunc 0.806 against 0.804 for three. The loop stops when the
#: alignment repeats.
DEFAULT_ROUNDS = 3


@dataclass
class MsaResult:
    """What :func:`build_msa` made.

    Attributes:
        path: the Stockholm file written.
        aligner_used: draft aligner that ran: ``"xinsi"``, ``"linsi"``, ``"ginsi"`` or
            ``"none"`` (one sequence).
        n_sequences: sequences in the alignment.
        warnings: messages for the user (e.g. the X-INS-i fallback).
        work_dir: the folder of intermediate files when kept, else ``None``.
        commands: the command lines that ran, in order (``RNA.alifold`` as a pseudo-command).
    """

    path: Path
    aligner_used: str
    n_sequences: int
    warnings: list[str] = field(default_factory=list)
    work_dir: Path | None = None
    commands: list[list[str]] = field(default_factory=list)


def _short(command: list[str]) -> str:
    """A command with programs and files by their base names (work paths are temporary)."""
    return " ".join(Path(part).name if "/" in part else part for part in command)


def _restore_residues(row: str, residues: str, name: str) -> str:
    """Give the tool's row back the input's residues, keeping its gaps and its case."""
    count = sum(char not in GAPS for char in row)
    if count != len(residues):
        raise ToolError(
            f"cmalign row {name!r} has {count} residues, expected {len(residues)} "
            "(the aligner changed the sequence)"
        )
    remaining = iter(residues)
    out = []
    for char in row:
        if char in GAPS:
            out.append(char)
        else:
            residue = next(remaining)
            out.append(residue.lower() if char.islower() else residue)
    return "".join(out)


#: Stockholm reads a line starting with one of these as markup or the end of the alignment, so
#: no sequence name may start with them.
_RESERVED_NAME_STARTS = ("#", "//")
#: cmbuild cannot make a model of fewer than two consensus columns.
MIN_LONGEST_SEQUENCE = 2


def check_records(records: list[SequenceRecord], fasta: str | Path) -> None:
    """Refuse, before any program runs, input that cannot become a Stockholm MSA.

    An id starting with ``#`` or ``//`` is refused rather than renamed: Stockholm cannot hold
    it (the line would read as markup or as the end of the alignment), and a silently renamed
    id would no longer match the user's other files.

    Raises:
        InputError: such an id (naming its file and line), or no sequence of at least
            :data:`MIN_LONGEST_SEQUENCE` nt.
    """
    for record in records:
        if record.id.startswith(_RESERVED_NAME_STARTS):
            raise InputError(
                f"{record.source or fasta}: id {record.id!r} starts with "
                f"{record.id[0] if record.id[0] == '#' else '//'!r}, which a Stockholm file cannot "
                "hold as a sequence name (rename the record)"
            )
    longest = max(records, key=lambda record: len(record.sequence))
    if len(longest.sequence) < MIN_LONGEST_SEQUENCE:
        raise InputError(
            f"{fasta}: every sequence is shorter than {MIN_LONGEST_SEQUENCE} nt (longest: "
            f"{longest.id!r}, {len(longest.sequence)} nt); Infernal cannot build a model of one "
            "column"
        )


def _check_tools(n_sequences: int) -> None:
    if n_sequences > 1:
        find_tool("mafft")
    find_tool("cmbuild")
    find_tool("cmalign")


@dataclass
class Alignments:
    """The alignments one run of the pipeline made (names are the record ids).

    Attributes:
        final: the cmalign alignment (``None`` when refinement was not asked for).
        draft: the MAFFT draft with its RNAalifold ``SS_cons``.
        aligner: draft aligner that ran (``xinsi``, ``linsi``, ``ginsi`` or ``none``).
        warnings: messages for the user.
        commands: command lines of the first round, in order.
        rounds: cmbuild/cmalign rounds run (0 without refinement).
        seconds: wall time per stage: ``mafft``, ``alifold``, ``infernal`` (all rounds).
    """

    final: Stockholm | None
    draft: Stockholm
    aligner: str
    warnings: list[str]
    commands: list[list[str]]
    rounds: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def align_records(
    records: list[SequenceRecord],
    work: Path,
    *,
    threads: int = 1,
    aligner: str = "auto",
    mxsize: float | None = None,
    refine: bool = True,
    rounds: int = DEFAULT_ROUNDS,
    fragments: bool = False,
) -> Alignments:
    """Align records in ``work`` (no output file); the core of :func:`build_msa`.

    Arguments:
        records: the sequences, query first.
        work: an existing folder for intermediate files.
        threads: threads for MAFFT and cmalign.
        aligner: ``auto``, ``xinsi``, ``linsi`` or ``ginsi``.
        mxsize: cmalign ``--mxsize`` in MB; ``None`` picks from available memory.
        refine: run cmbuild/cmalign; without it only the MAFFT draft is made (to measure
            what the Infernal step adds).
        rounds: at most this many cmbuild → cmalign rounds; from round 2 the model is built
            from the previous round's alignment, and the loop stops early once an alignment repeats.
        fragments: the sequences may be fragments cut inside the RNA: let cmalign use
            truncated alignment (without :data:`~.infernal.CMALIGN_OPTIONS`' ``--notrunc``).

    Raises:
        ToolError: a program missing or failing.
    """
    clock = time.perf_counter()
    draft = draft_alignment([r.sequence for r in records], work, aligner=aligner, threads=threads)
    seconds = {"mafft": time.perf_counter() - clock}
    commands = [draft.command] if draft.command else []
    clock = time.perf_counter()
    structure, energy = consensus_structure(draft.rows)
    seconds["alifold"] = time.perf_counter() - clock
    commands.append(["RNA.alifold", ALIFOLD_OPTIONS, f"(ViennaRNA {viennarna_version()})"])
    log.debug("consensus structure: %d base pairs, %.2f kcal/mol", structure.count("("), energy)
    neutral = [f"s{i}" for i in range(len(records))]
    draft_sto = Stockholm(names=neutral, rows=draft.rows, gc={"SS_cons": structure})
    named_draft = Stockholm(names=[r.id for r in records], rows=draft.rows, gc=dict(draft_sto.gc))
    if not refine:
        return Alignments(None, named_draft, draft.aligner, draft.warnings, commands, 0, seconds)
    unaligned = work / "sequences.fasta"
    pairs = list(zip(neutral, records, strict=True))
    unaligned.write_text("".join(f">{n}\n{tool_residues(r.sequence)}\n" for n, r in pairs))
    options = CMALIGN_OPTIONS
    if fragments:
        options = tuple(option for option in options if option != "--notrunc")
    clock = time.perf_counter()
    warnings = list(draft.warnings)
    current, aligned, rounds_run = draft_sto, None, 0
    for round_no in range(1, rounds + 1):
        try:
            new = _infernal_round(round_no, current, unaligned, work, neutral, threads=threads,
                                  mxsize=mxsize, options=options, commands=commands)
        except ToolError as error:
            if aligned is None:
                raise
            # a later round can fail where an earlier one did not (e.g. cmbuild's "Z got
            # insanely large" on a model of a very long insert): keep the last good alignment
            message = (f"Infernal round {round_no} of {rounds} failed ({_brief(error)}); "
                       f"kept the alignment of round {rounds_run}")
            log.warning(message)
            warnings.append(message)
            break
        converged = aligned is not None and new.rows == aligned.rows
        aligned, rounds_run = new, round_no
        if converged:
            log.debug("Infernal refinement converged after %d rounds", round_no)
            break
        current = Stockholm(
            names=aligned.names,
            rows=[row.upper().replace(".", "-").replace("~", "-") for row in aligned.rows],
            gc={"SS_cons": aligned.gc["SS_cons"]},
        )
    assert aligned is not None
    seconds["infernal"] = time.perf_counter() - clock
    by_name = dict(zip(aligned.names, aligned.rows, strict=True))
    final = Stockholm(
        names=[r.id for r in records],
        rows=[_restore_residues(by_name[n], r.sequence, r.id) for n, r in pairs],
        gc={tag: aligned.gc[tag] for tag in ("SS_cons", "RF", "PP_cons") if tag in aligned.gc},
        gr={r.id: aligned.gr[n] for n, r in pairs if n in aligned.gr},
    )
    return Alignments(final, named_draft, draft.aligner, warnings, commands, rounds_run, seconds)


def _infernal_round(
    round_no: int,
    current: Stockholm,
    unaligned: Path,
    work: Path,
    names: list[str],
    *,
    threads: int,
    mxsize: float | None,
    options: tuple[str, ...],
    commands: list[list[str]],
) -> Stockholm:
    """One cmbuild → cmalign round: model ``current``, align ``unaligned`` to it.

    Round 1 models the MAFFT draft; later rounds the previous cmalign alignment. The command
    lines of round 1 are appended to ``commands``.

    Raises:
        ToolError: cmbuild or cmalign failing, or cmalign losing sequences.
    """
    source = work / ("draft.sto" if round_no == 1 else f"round{round_no - 1}.plain.sto")
    with source.open("w") as handle:
        write_stockholm(current, handle)
    model = work / ("draft.cm" if round_no == 1 else f"round{round_no}.cm")
    try:
        build_command = cmbuild(source, model)
    except ToolError as error:
        if "illegal to construct a CM of only" not in error.stderr:
            raise
        raise ToolError(
            "cmbuild cannot build a model of this alignment: fewer than 2 of its columns hold "
            "residues of half the sequences (the sequences are too short or too different)",
            command=error.command,
        ) from None
    output = work / ("cmalign.sto" if round_no == 1 else f"round{round_no}.sto")
    align_command = cmalign(model, unaligned, output, threads=threads, mxsize=mxsize,
                            options=options)
    if round_no == 1:
        commands += [build_command, align_command]
    aligned = read_stockholm(output)
    if sorted(aligned.names) != sorted(names):
        raise ToolError(
            f"cmalign returned {len(aligned.names)} sequences, expected {len(names)}",
            command=align_command,
        )
    return aligned


def _brief(error: ToolError) -> str:
    """A failed program's name and the last line of its error output."""
    program = Path(error.command[0]).name if error.command else "Infernal"
    lines = [line.strip() for line in error.stderr.splitlines() if line.strip()]
    return f"{program}: {lines[-1]}" if lines else str(error)


def build_msa(
    fasta: str | Path,
    out: str | Path,
    *,
    threads: int = 1,
    aligner: str = "auto",
    keep_work: bool = False,
    work_dir: Path | None = None,
    mxsize: float | None = None,
    rounds: int = DEFAULT_ROUNDS,
    fragments: bool = False,
) -> MsaResult:
    """Build a structure-aware MSA of the sequences of a FASTA file.

    Arguments:
        fasta: unaligned sequences; the first record is the query and comes first in the output.
        out: Stockholm file to write (atomically); ``-``: standard output.
        threads: threads for MAFFT and cmalign.
        aligner: ``auto`` (X-INS-i if this MAFFT has its extensions, else L-INS-i with a
            warning), ``xinsi``, ``linsi`` or ``ginsi`` (end-to-end homologs).
        keep_work: keep the folder of intermediate files (draft, model, cmalign output).
        work_dir: where to create that private folder (default: the system temp folder).
        mxsize: cmalign ``--mxsize`` (MB per thread); default: half the available memory
            shared by the threads, at least cmalign's own 1028.
        rounds: at most this many cmbuild → cmalign rounds (stops early when the alignment
            repeats).
        fragments: the sequences may be fragments cut inside the RNA (cmalign's truncated
            alignment; by default whole homologs are assumed: ``--notrunc``).

    When a cmbuild → cmalign round after the first fails, the previous round's alignment is
    written, with a warning (logged, in ``warnings`` and as a ``#=GF CC Warning`` line).
    Ctrl-C or SIGTERM stops the running program (its whole process group) and removes the
    intermediate folder within a few seconds; nothing is written then.

    Returns:
        An :class:`MsaResult`.

    Raises:
        InputError: unreadable or empty FASTA, an id Stockholm cannot hold (starting with
            ``#`` or ``//``), or no sequence of at least 2 nt; all before any program runs.
        ConfigError: bad ``threads`` or ``aligner``; ``out`` is the input file (also
            through a link), a folder, or in a folder that cannot be written
            (:func:`~rinalmo_search.seqio.check_output`).
        ToolError: a program missing from PATH or failing (with its stderr tail).
        KeyboardInterrupt: Ctrl-C, or :class:`~rinalmo_search.tools.Terminated` (SIGTERM).
    """
    if threads < 1:
        raise ConfigError(f"Invalid 'threads' value: {threads} (expected a positive integer)")
    if rounds < 1:
        raise ConfigError(f"Invalid 'rounds' value: {rounds} (expected a positive integer)")
    if mxsize is not None and not mxsize > 0:
        raise ConfigError(f"Invalid 'mxsize' value: {mxsize} (expected a positive number of MB)")
    if aligner not in ALIGNERS:
        raise ConfigError(f"Invalid aligner {aligner!r} (expected one of {', '.join(ALIGNERS)})")
    check_output(out, option="--out", inputs=[fasta])
    records = read_fasta(fasta)
    if not records:
        raise InputError(f"{fasta}: no sequences to align")
    check_records(records, fasta)
    _check_tools(len(records))
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with sigterm_raises():  # SIGTERM, like Ctrl-C, stops the programs and removes the folder
        work = Path(tempfile.mkdtemp(prefix="rinalmo-msa-", dir=work_dir)).absolute()
        try:
            made = align_records(
                records, work, threads=threads, aligner=aligner, mxsize=mxsize, rounds=rounds,
                fragments=fragments,
            )
            assert made.final is not None
            alignment = made.final
            used, warnings, commands = made.aligner, made.warnings, made.commands
            alignment.gf = _provenance(records, made, Path(out))
            with open_output(out) as handle:
                write_stockholm(alignment, handle)
        finally:
            if keep_work:
                log.info("intermediate files kept in %s", work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    log.info("wrote %s: %d sequences, %d columns", out, len(records), alignment.width)
    return MsaResult(
        path=Path(out),
        aligner_used=used,
        n_sequences=len(records),
        warnings=warnings,
        work_dir=work if keep_work else None,
        commands=commands,
    )


def _provenance(
    records: list[SequenceRecord], made: Alignments, out: Path
) -> list[tuple[str, str]]:
    """``#=GF`` lines: what ran, with which versions and options."""
    used = made.aligner
    mafft_version = tool_version("mafft") if used != "none" else "not run"
    lines = [
        ("ID", "msa" if str(out) == STDIO else out.stem.split(".")[0] or "msa"),
        ("AU", f"rinalmo-search {__version__}"),
        ("CC", f"Query: {records[0].id}"),
        ("CC", f"Aligner used: {ALIGNER_NAMES.get(used, used)}"),
        ("CC", f"MAFFT {mafft_version}; ViennaRNA {viennarna_version()}; "
               f"Infernal {tool_version('cmalign')}"),
    ]
    lines.append(("CC", f"Infernal rounds: {made.rounds} (cmbuild -> cmalign; from round 2 "
                        "the model is built from the previous alignment)"))
    lines += [("CC", f"Warning: {message}") for message in made.warnings]
    lines += [("BM", _short(command)) for command in made.commands]
    lines.append(("SQ", str(len(records))))
    return lines
