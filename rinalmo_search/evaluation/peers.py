"""The alignment tools users would pick instead, run on the same queries and database.

Each peer writes the queries and the database to FASTA with neutral ids (``q0…``, ``t0…``: some
tools rewrite ids with ``/`` or ``|``), runs as a user would run it for a ranked list (a
permissive E-value, 10 by default, both strands: each tool's default), and returns each query's
hits **ranked by bit score**, one row per target (its best-scoring alignment), with that
alignment's E-value beside it: the ranking metrics (AP, sensitivity to the first FP, P@10) use
the order, the at-threshold ones (precision/recall/F1 at E ≤ 1e-3) the E-values.

Commands (E ≤ ``evalue``, at most ``max_hits`` targets per query):

* BLASTn: ``makeblastdb -dbtype nucl`` then ``blastn -task blastn -outfmt "6 qseqid sseqid
  evalue bitscore"`` (``-strand both``, the default).
* nhmmer: ``nhmmer --qformat fasta --tblout --noali -E`` (both strands, the default).
* MMseqs2: ``mmseqs easy-search --search-type 3 --strand 2 --max-seqs`` (2: both strands; its
  default, 1, is the forward strand only).
* ``cmsearch-1seq``: Infernal with a covariance model built from each query alone (RNAcmap /
  rMSA style): RNAfold's MFE structure → a one-sequence Stockholm file with ``#=GC SS_cons`` →
  ``cmbuild`` → ``cmcalibrate`` with a very short random sample (``-L``, in Mb; a full
  calibration takes 10–20 minutes per model on 2 cores) → ``cmsearch`` (both strands).
  ``cmsearch`` refuses uncalibrated models outside ``--hmmonly`` mode (which would not use the
  structure), hence the short calibration: its E-values are rough (its ranking, by bit score
  like every peer's, is not). Not among the default :data:`PEERS` (it costs seconds per query).

The parsers (:func:`parse_blast6`, :func:`parse_nhmmer_tblout`, :func:`parse_mmseqs_m8`,
:func:`parse_cmsearch_tblout`) are public so that tests can feed them what the installed tools
wrote.
"""

from __future__ import annotations

import logging
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
#: The E-value peers are asked to report down to (a user's permissive ranked list).
SEARCH_EVALUE = 10.0

#: One alignment a tool reported: ``(query name, target name, bit score, E-value)``.
Row = tuple[str, str, float, float]


@dataclass
class PeerRun:
    """Ranked hits of every query from one tool, and what the run cost.

    Attributes:
        name: the tool.
        hits: query id → ``[(target_id, bit score)]``, highest bit score first.
        evalues: query id → target id → the E-value of that target's best alignment.
        stages: stage → wall seconds: ``index`` (database preparation), ``search``, and for
            :data:`SINGLE_CM` ``build`` (fold, cmbuild, cmcalibrate of every query).
        threads: threads the tool was given.
        version: the tool's version (:func:`~rinalmo_search.tools.tool_version`).
    """

    name: str
    hits: dict[str, list[tuple[str, float]]]
    evalues: dict[str, dict[str, float]]
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


def _collect(
    rows: Sequence[Row],
    query_names: dict[str, str],
    target_names: dict[str, str],
    max_hits: int,
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, dict[str, float]]]:
    """Each query's targets by their best alignment (highest bit score, then lowest E-value),
    ranked by bit score, at most ``max_hits``; and each kept target's E-value."""
    best: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for query, target, bits, evalue in rows:
        seen = best[query].get(target)
        if seen is None or (bits, -evalue) > (seen[0], -seen[1]):
            best[query][target] = (bits, evalue)
    hits: dict[str, list[tuple[str, float]]] = {}
    evalues: dict[str, dict[str, float]] = {}
    for name, query_id in query_names.items():
        ranked = sorted(best.get(name, {}).items(),
                        key=lambda item: (-item[1][0], item[1][1], item[0]))[:max_hits]
        hits[query_id] = [(target_names[t], bits) for t, (bits, _e) in ranked]
        evalues[query_id] = {target_names[t]: evalue for t, (_b, evalue) in ranked}
    return hits, evalues


def blastn_command(query: Path, database: Path, out: Path, *, evalue: float, max_hits: int,
                   threads: int, outfmt: str = "6 qseqid sseqid evalue bitscore") -> list[str]:
    """The BLASTn command line of every comparison (benchmarks call it too): both strands."""
    return ["blastn", "-task", "blastn", "-query", str(query), "-db", str(database),
            "-outfmt", outfmt, "-evalue", str(evalue), "-strand", "both",
            "-max_target_seqs", str(max_hits), "-num_threads", str(threads), "-out", str(out)]


def mmseqs_command(query: Path, target: Path, out: Path, tmp: Path, *, evalue: float,
                   max_hits: int, threads: int) -> list[str]:
    """The MMseqs2 nucleotide search command line of every comparison (benchmarks call it too):
    both strands (``--strand 2``)."""
    return ["mmseqs", "easy-search", str(query), str(target), str(out), str(tmp),
            "--search-type", "3", "--strand", "2", "-e", str(evalue), "--max-seqs",
            str(max_hits), "--threads", str(threads), "-v", "1"]


def parse_blast6(text: str) -> list[Row]:
    """Rows of ``blastn -outfmt "6 qseqid sseqid evalue bitscore"``."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, target, evalue, bits = line.split("\t")
        rows.append((query, target, float(bits), float(evalue)))
    return rows


def parse_mmseqs_m8(text: str) -> list[Row]:
    """Rows of ``mmseqs easy-search --format-output query,target,evalue,bits``."""
    return parse_blast6(text)


def parse_nhmmer_tblout(text: str) -> list[Row]:
    """Rows of an ``nhmmer --tblout`` table."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split()
        # target name, accession, query name, accession, hmmfrom, hmmto, alifrom, alito,
        # envfrom, envto, sqlen, strand, E-value, score, bias, description
        rows.append((cells[2], cells[0], float(cells[13]), float(cells[12])))
    return rows


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


_Runner = Callable[..., tuple[list[Row], dict[str, float]]]


def _blastn(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[list[Row], dict[str, float]]:
    start = time.perf_counter()
    run_tool(
        ["makeblastdb", "-dbtype", "nucl", "-in", str(work / "db.fa"), "-out", str(work / "db")]
    )
    prepared = time.perf_counter() - start
    run_tool(blastn_command(work / "q.fa", work / "db", work / "out.tsv", evalue=evalue,
                            max_hits=max_hits, threads=threads))
    return parse_blast6((work / "out.tsv").read_text()), {"index": prepared}


def _nhmmer(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[list[Row], dict[str, float]]:
    # --qformat: queries all of one length read as an alignment otherwise ("could be either")
    run_tool(["nhmmer", "--qformat", "fasta", "--tformat", "fasta", "--tblout",
              str(work / "out.tbl"), "--noali", "-E", str(evalue),
              "--cpu", str(threads), "-o", "/dev/null", str(work / "q.fa"), str(work / "db.fa")])
    return parse_nhmmer_tblout((work / "out.tbl").read_text()), {"index": 0.0}


def _mmseqs(work: Path, threads: int, evalue: float, max_hits: int
            ) -> tuple[list[Row], dict[str, float]]:
    run_tool(mmseqs_command(work / "q.fa", work / "db.fa", work / "out.m8", work / "tmp",
                            evalue=evalue, max_hits=max_hits, threads=threads)
             + ["--format-output", "query,target,evalue,bits"])
    return parse_mmseqs_m8((work / "out.m8").read_text()), {"index": 0.0}


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


def _single_cm(work: Path, threads: int, evalue: float, max_hits: int, *,
               calibrate_mb: float = 0.01) -> tuple[list[Row], dict[str, float]]:
    from tqdm import tqdm

    rows: list[Row] = []
    build = 0.0
    queries = read_fasta(work / "q.fa")
    for query in tqdm(queries, desc=SINGLE_CM, unit="query", leave=False):
        start = time.perf_counter()
        cm = build_query_cm(query.sequence, work, calibrate_mb=calibrate_mb, threads=threads)
        build += time.perf_counter() - start
        table = work / "out.tbl"
        run_tool(["cmsearch", "--noali", "-E", str(evalue), "--cpu", str(threads),
                  "--tblout", str(table), "-o", "/dev/null", str(cm), str(work / "db.fa")])
        rows += [(query.id, target, bits, e)
                 for target, bits, e in parse_cmsearch_tblout(table.read_text())]
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
    evalue: float = SEARCH_EVALUE,
    max_hits: int = 1000,
    workdir: str | Path | None = None,
    calibrate_mb: float = 0.01,
) -> PeerRun:
    """Search ``queries`` against ``database`` with one peer tool.

    Arguments:
        name: one of :data:`ALL_PEERS`.
        queries: query sequences.
        database: database sequences (the queries are normally among them).
        threads: threads given to the tool.
        evalue: report threshold (default :data:`SEARCH_EVALUE`, permissive: the hits are a
            ranked list; a stricter cut-off is applied later, on :attr:`PeerRun.evalues`).
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
    hits, evalues = _collect(rows, query_names, target_names, max_hits)
    log.info("%s: %d queries in %.1f s (%d threads)", name, len(queries), seconds, threads)
    return PeerRun(name, hits, evalues, stages, threads, tool_version(program))
