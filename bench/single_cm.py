"""Infernal ``cmsearch`` with a covariance model built from the query alone (RNAcmap/rMSA style).

For each query: RNAfold's minimum-free-energy structure → a one-sequence Stockholm file with
``#=GC SS_cons`` → ``cmbuild`` → ``cmcalibrate`` with a very short random sample (``-L``, in
Mb; the default full calibration takes 10–20 minutes per model on this machine) → ``cmsearch
--toponly`` against the database. ``cmsearch`` refuses uncalibrated models outside ``--hmmonly``
mode (which would not use the structure), hence the short calibration: its E-values are rough,
so hits are **ranked by bit score**, and the E-value cut-off only decides what is reported.

Not in :mod:`rinalmo_search.evaluation.peers` (which has BLASTn, nhmmer, MMseqs2), so it lives
here, returning the same :class:`~rinalmo_search.evaluation.protocol.ToolRun`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from rinalmo_search.evaluation.protocol import ToolRun
from rinalmo_search.seqio import SequenceRecord
from rinalmo_search.tools import run_tool

log = logging.getLogger(__name__)

NAME = "cmsearch-1seq"


def version() -> str:
    """Infernal's version line, or ``"not found"``."""
    if shutil.which("cmsearch") is None:
        return "not found"
    for line in run_tool(["cmsearch", "-h"]).stdout.splitlines():
        if line.startswith("# INFERNAL"):
            return line.strip("# ").strip()
    return ""


def fold(sequence: str) -> str:
    """RNAfold MFE structure in dot-bracket (ViennaRNA's Python binding)."""
    import RNA

    structure, _energy = RNA.fold(sequence.upper().replace("T", "U"))
    return str(structure)


def build_query_cm(
    record: SequenceRecord, work: Path, *, calibrate_mb: float, threads: int = 1
) -> Path:
    """Write, build and (shortly) calibrate the one-sequence CM of ``record``; returns its path."""
    sequence = record.sequence.upper().replace("T", "U")
    sto = work / "query.sto"
    sto.write_text(
        f"# STOCKHOLM 1.0\n#=GF ID query\nquery {sequence}\n#=GC SS_cons {fold(sequence)}\n//\n"
    )
    cm = work / "query.cm"
    run_tool(["cmbuild", "-F", str(cm), str(sto)])
    run_tool(["cmcalibrate", "-L", str(calibrate_mb), "--cpu", str(threads), str(cm)])
    return cm


def parse_tblout(text: str) -> list[tuple[str, float, float]]:
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


def run_single_cm(
    queries: Sequence[SequenceRecord],
    database: Sequence[SequenceRecord],
    *,
    evalue: float = 1e-3,
    max_hits: int = 1000,
    calibrate_mb: float = 0.01,
    threads: int = 1,
    workdir: str | Path | None = None,
) -> ToolRun:
    """Search every query's one-sequence CM against ``database``.

    Arguments:
        queries: query records.
        database: database records.
        evalue: report hits with a (roughly calibrated) E-value at most this.
        max_hits: keep at most this many targets per query (best bit scores).
        calibrate_mb: ``cmcalibrate -L`` (Mb of random sequence; small = fast and rough).
        threads: ``--cpu`` of cmcalibrate and cmsearch.
        workdir: scratch folder parent (default: the system's).

    Returns:
        A ToolRun whose ``seconds`` holds ``build`` (fold + cmbuild + cmcalibrate) and
        ``search``; hits are scored by bit score.
    """
    seconds = {"index": 0.0, "build": 0.0, "search": 0.0}
    hits: dict[str, list[tuple[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cm-", dir=workdir) as folder:
        work = Path(folder)
        names: dict[str, str] = {}
        with (work / "db.fa").open("w") as handle:
            for index, record in enumerate(database):
                names[f"t{index}"] = record.id
                handle.write(f">t{index}\n{record.sequence}\n")
        for query in tqdm(queries, desc="cmsearch-1seq", unit="query", leave=False):
            start = time.perf_counter()
            cm = build_query_cm(query, work, calibrate_mb=calibrate_mb, threads=threads)
            built = time.perf_counter()
            table = work / "out.tbl"
            run_tool(
                [
                    "cmsearch",
                    "--toponly",
                    "--noali",
                    "-E",
                    str(evalue),
                    "--cpu",
                    str(threads),
                    "--tblout",
                    str(table),
                    "-o",
                    "/dev/null",
                    str(cm),
                    str(work / "db.fa"),
                ]
            )
            seconds["build"] += built - start
            seconds["search"] += time.perf_counter() - built
            best: dict[str, float] = {}
            for target, bits, _e in parse_tblout(table.read_text()):
                if bits > best.get(target, float("-inf")):
                    best[target] = bits
            ranked = sorted(best.items(), key=lambda item: -item[1])[:max_hits]
            hits[query.id] = [(names[t], score) for t, score in ranked]
    return ToolRun(
        NAME,
        hits,
        seconds,
        len(queries),
        threads,
        None,
        details={
            "version": version(),
            "evalue": evalue,
            "max_hits": max_hits,
            "calibration": f"cmcalibrate -L {calibrate_mb}",
            "ranking": "bit score",
            "structure": "RNAfold MFE of the query",
        },
    )
