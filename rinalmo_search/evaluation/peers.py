"""The alignment tools users would pick instead, run on the same queries and database.

Each peer writes the queries and the database to FASTA with neutral ids (``q0…``, ``t0…``: some
tools rewrite ids with ``/`` or ``|``), runs with its own E-value threshold, and returns each
query's hits ranked best first, one row per target (the best of its alignments), scored
``-log10(E)`` (higher is better). All search the sense strand only, as our tool does.

Commands (E ≤ ``evalue``, at most ``max_hits`` targets per query):

* BLASTn: ``makeblastdb -dbtype nucl`` then ``blastn -task blastn -outfmt 6 -strand plus``.
* nhmmer: ``nhmmer --tblout --noali --watson -E``.
* MMseqs2: ``mmseqs easy-search --search-type 3 --strand 1 --max-seqs``.
* ``cmsearch-1seq``: Infernal with a covariance model built from each query alone (RNAcmap /
  rMSA style): RNAfold's MFE structure → a one-sequence Stockholm file with ``#=GC SS_cons`` →
  ``cmbuild`` → ``cmcalibrate`` with a very short random sample (``-L``, in Mb; a full
  calibration takes 10–20 minutes per model on 2 cores) → ``cmsearch --toponly``. ``cmsearch``
  refuses uncalibrated models outside ``--hmmonly`` mode (which would not use the structure),
  hence the short calibration: its E-values are rough, so its hits are **ranked by bit score**
  and the E-value only decides what is reported. Not among the default :data:`PEERS` (it costs
  seconds per query).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rinalmo_search.errors import ToolError
from rinalmo_search.seqio import SequenceRecord, read_fasta
from rinalmo_search.tools import run_tool, tool_version

log = logging.getLogger(__name__)

PEERS = ("blastn", "nhmmer", "mmseqs")
#: The one-sequence covariance-model search (not a default peer: seconds per query).
SINGLE_CM = "cmsearch-1seq"
ALL_PEERS = (*PEERS, SINGLE_CM)


@dataclass
class PeerRun:
    """Ranked hits of every query from one tool, and what the run cost.

    Attributes:
        name: the tool.
        hits: query id → ``[(target_id, score)]`` best first; score is ``-log10(E)`` (bit
            score for :data:`SINGLE_CM`).
        stages: stage → wall seconds: ``index`` (database preparation), ``search``, and for
            :data:`SINGLE_CM` ``build`` (fold, cmbuild, cmcalibrate of every query).
        threads: threads the tool was given.
        version: the tool's version (:func:`~rinalmo_search.tools.tool_version`).
    """

    name: str
    hits: dict[str, list[tuple[str, float]]]
    stages: dict[str, float]
    threads: int
    version: str

    @property
    def seconds(self) -> float:
        """Wall time of the whole run (database preparation included)."""
        return sum(self.stages.values())

    @property
    def prepare_seconds(self) -> float:
        """Wall time of the database preparation alone."""
        return self.stages.get("index", 0.0)


def _write(records: Sequence[SequenceRecord], path: Path, prefix: str) -> dict[str, str]:
    names: dict[str, str] = {}
    with path.open("w") as handle:
        for index, record in enumerate(records):
            name = f"{prefix}{index}"
            names[name] = record.id
            handle.write(f">{name}\n{record.sequence}\n")
    return names


def _score(evalue: float) -> float:
    return 300.0 if evalue <= 0 else -math.log10(evalue)


def _collect(
    rows: Sequence[tuple[str, str, float]],
    query_names: dict[str, str],
    target_names: dict[str, str],
    max_hits: int,
) -> dict[str, list[tuple[str, float]]]:
    """Each query's targets, best score first (the best of a target's rows), at most
    ``max_hits``; rows are ``(query name, target name, score)``."""
    best: dict[str, dict[str, float]] = defaultdict(dict)
    for query, target, score in rows:
        seen = best[query].get(target)
        if seen is None or score > seen:
            best[query][target] = score
    hits: dict[str, list[tuple[str, float]]] = {}
    for name, query_id in query_names.items():
        ranked = sorted(best.get(name, {}).items(), key=lambda item: -item[1])[:max_hits]
        hits[query_id] = [(target_names[t], s) for t, s in ranked]
    return hits


def blastn_command(query: Path, database: Path, out: Path, *, evalue: float, max_hits: int,
                   threads: int, outfmt: str = "6 qseqid sseqid evalue") -> list[str]:
    """The BLASTn command line of every comparison (benchmarks call it too)."""
    return ["blastn", "-task", "blastn", "-query", str(query), "-db", str(database),
            "-outfmt", outfmt, "-evalue", str(evalue), "-strand", "plus",
            "-max_target_seqs", str(max_hits), "-num_threads", str(threads), "-out", str(out)]


def mmseqs_command(query: Path, target: Path, out: Path, tmp: Path, *, evalue: float,
                   max_hits: int, threads: int) -> list[str]:
    """The MMseqs2 nucleotide search command line of every comparison (benchmarks call it too)."""
    return ["mmseqs", "easy-search", str(query), str(target), str(out), str(tmp),
            "--search-type", "3", "--strand", "1", "-e", str(evalue), "--max-seqs",
            str(max_hits), "--threads", str(threads), "-v", "1"]


_Rows = list[tuple[str, str, float]]
_Runner = Callable[..., tuple[_Rows, dict[str, float]]]


def _blastn(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[_Rows, dict[str, float]]:
    start = time.perf_counter()
    run_tool(
        ["makeblastdb", "-dbtype", "nucl", "-in", str(work / "db.fa"), "-out", str(work / "db")]
    )
    prepared = time.perf_counter() - start
    run_tool(blastn_command(work / "q.fa", work / "db", work / "out.tsv", evalue=evalue,
                            max_hits=max_hits, threads=threads))
    rows = []
    for line in (work / "out.tsv").read_text().splitlines():
        query, target, value = line.split("\t")
        rows.append((query, target, _score(float(value))))
    return rows, {"index": prepared}


def _nhmmer(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[_Rows, dict[str, float]]:
    run_tool(
        [
            "nhmmer",
            "--tblout",
            str(work / "out.tbl"),
            "--noali",
            "--watson",
            "-E",
            str(evalue),
            "--cpu",
            str(threads),
            "-o",
            "/dev/null",
            str(work / "q.fa"),
            str(work / "db.fa"),
        ]
    )
    rows = []
    for line in (work / "out.tbl").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cells = line.split()
        # target name, accession, query name, accession, hmmfrom, hmmto, alifrom, alito,
        # envfrom, envto, sqlen, strand, E-value, ...
        rows.append((cells[2], cells[0], _score(float(cells[12]))))
    return rows, {"index": 0.0}


def _mmseqs(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[_Rows, dict[str, float]]:
    run_tool(mmseqs_command(work / "q.fa", work / "db.fa", work / "out.m8", work / "tmp",
                            evalue=evalue, max_hits=max_hits, threads=threads)
             + ["--format-output", "query,target,evalue"])
    rows = []
    for line in (work / "out.m8").read_text().splitlines():
        query, target, value = line.split("\t")
        rows.append((query, target, _score(float(value))))
    return rows, {"index": 0.0}


def fold(sequence: str) -> str:
    """RNAfold MFE structure of ``sequence`` in dot-bracket (ViennaRNA's Python binding)."""
    import RNA

    structure, _energy = RNA.fold(sequence.upper().replace("T", "U"))
    return str(structure)


def build_query_cm(sequence: str, work: Path, *, calibrate_mb: float, threads: int = 1) -> Path:
    """Write, build and (shortly) calibrate the one-sequence CM of ``sequence``; returns it."""
    sequence = sequence.upper().replace("T", "U")
    sto = work / "query.sto"
    sto.write_text(
        f"# STOCKHOLM 1.0\n#=GF ID query\nquery {sequence}\n#=GC SS_cons {fold(sequence)}\n//\n"
    )
    cm = work / "query.cm"
    run_tool(["cmbuild", "-F", str(cm), str(sto)])
    run_tool(["cmcalibrate", "-L", str(calibrate_mb), "--cpu", str(threads), str(cm)])
    return cm


def parse_cmsearch_tblout(text: str) -> list[tuple[str, float, float]]:
    """``(target, bit score, E-value)`` rows of a ``cmsearch --tblout`` table."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split()
        # target, acc, query, acc, mdl, mdl from, mdl to, seq from, seq to, strand, trunc,
        # pass, gc, bias, score, E-value, inc, description
        rows.append((cells[0], float(cells[14]), float(cells[15])))
    return rows


def _single_cm(work: Path, threads: int, evalue: float, max_hits: int, *,
               calibrate_mb: float = 0.01) -> tuple[_Rows, dict[str, float]]:
    from tqdm import tqdm

    rows: _Rows = []
    build = 0.0
    queries = read_fasta(work / "q.fa")
    for query in tqdm(queries, desc=SINGLE_CM, unit="query", leave=False):
        start = time.perf_counter()
        cm = build_query_cm(query.sequence, work, calibrate_mb=calibrate_mb, threads=threads)
        build += time.perf_counter() - start
        table = work / "out.tbl"
        run_tool(["cmsearch", "--toponly", "--noali", "-E", str(evalue), "--cpu", str(threads),
                  "--tblout", str(table), "-o", "/dev/null", str(cm), str(work / "db.fa")])
        rows += [(query.id, target, bits)
                 for target, bits, _e in parse_cmsearch_tblout(table.read_text())]
    return rows, {"index": 0.0, "build": build}


_RUNNERS: dict[str, tuple[_Runner, str]] = {
    "blastn": (_blastn, "blastn"),
    "nhmmer": (_nhmmer, "nhmmer"),
    "mmseqs": (_mmseqs, "mmseqs"),
    SINGLE_CM: (_single_cm, "cmsearch"),
}


def peer_version(name: str) -> str:
    """The version of peer ``name``'s tool (``"not found"`` when it is not installed)."""
    try:
        return tool_version(_RUNNERS[name][1])
    except ToolError:
        return "not found"


def run_peer(
    name: str,
    queries: Sequence[SequenceRecord],
    database: Sequence[SequenceRecord],
    *,
    threads: int = 1,
    evalue: float = 1e-3,
    max_hits: int = 1000,
    workdir: str | Path | None = None,
    calibrate_mb: float = 0.01,
) -> PeerRun:
    """Search ``queries`` against ``database`` with one peer tool.

    Arguments:
        name: one of :data:`PEERS`.
        queries: query sequences.
        database: database sequences (the queries are normally among them).
        threads: threads given to the tool.
        evalue: report threshold.
        max_hits: at most this many targets per query.
        workdir: scratch folder (default: a temporary one, removed afterwards).
        calibrate_mb: ``cmcalibrate -L`` of :data:`SINGLE_CM` (Mb of random sequence; small is
            fast and rough).

    Raises:
        ToolError: unknown peer, tool missing or failing.
    """
    if name not in _RUNNERS:
        raise ToolError(f"Unknown peer {name!r} (expected one of {', '.join(ALL_PEERS)})")
    runner, program = _RUNNERS[name]
    if shutil.which(program) is None:
        raise ToolError(f"{program}: program not found on PATH (needed for peer {name})")
    scratch = tempfile.TemporaryDirectory(prefix=f"eval-{name}-", dir=workdir)
    with scratch as folder:
        work = Path(folder)
        query_names = _write(queries, work / "q.fa", "q")
        target_names = _write(database, work / "db.fa", "t")
        options = {"calibrate_mb": calibrate_mb} if name == SINGLE_CM else {}
        start = time.perf_counter()
        rows, stages = runner(work, threads, evalue, max_hits, **options)
        seconds = time.perf_counter() - start
    stages["search"] = seconds - sum(stages.values())
    hits = _collect(rows, query_names, target_names, max_hits)
    log.info("%s: %d queries in %.1f s (%d threads)", name, len(queries), seconds, threads)
    return PeerRun(name, hits, stages, threads, tool_version(program))
