"""Search hits and the tables every search writes.

The hits table (tab-separated) opens with a ``#`` block that documents each column and names
the database the E-values are computed for, then a header line, then one row per hit:
``query_id rank target_id score family clan target_length embedding_score alignment_score``
(today's columns, in today's order) followed by ``evalue query_start query_end target_start
target_end`` (:data:`COLUMN_DOCS` says what each means). Missing labels are written as ``NA``,
values that do not apply are empty; scores with 6 significant digits. :func:`read_hits_tsv`
skips the ``#`` lines, as do ``pandas.read_csv(comment="#")``, ``grep -v '^#'`` and Galaxy.

:func:`write_blast6` writes BLAST's 12 tabular columns (``-outfmt 6``) instead, for tools
that read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .seqio import open_output

#: What each column of the hits table holds (the order of the columns).
COLUMN_DOCS: dict[str, str] = {
    "query_id": "the query's FASTA id",
    "rank": "1 = best hit of the query",
    "target_id": "the database sequence's id",
    "score": "what hits are ranked by: with re-ranking the calibrated probability that the "
    "target is in the query's family (0-1); without, the cosine similarity of the embeddings",
    "family": "the target's Rfam family (NA: not labelled)",
    "clan": "the target's Rfam clan (NA: none)",
    "target_length": "the target's length (nt)",
    "embedding_score": "cosine similarity of query and target embeddings",
    "alignment_score": "-log10 of the Smith-Waterman E-value for the model's reference "
    "database size (what the calibrated score was fitted on; empty without re-ranking)",
    "evalue": "expected number of unrelated sequences aligning at least as well in the "
    "database searched (Karlin-Altschul, its size in the header)",
    "query_start": "first query position of the local alignment (1-based)",
    "query_end": "last query position of the local alignment (1-based, inclusive)",
    "target_start": "first target position of the local alignment (1-based)",
    "target_end": "last target position of the local alignment (1-based, inclusive)",
}
HIT_COLUMNS = tuple(COLUMN_DOCS)

#: BLAST's ``-outfmt 6`` columns, in order.
BLAST6_COLUMNS = ("qseqid", "sseqid", "pident", "length", "mismatch", "gapopen", "qstart",
                  "qend", "sstart", "send", "evalue", "bitscore")


@dataclass(frozen=True)
class Alignment:
    """The local (Smith-Waterman) alignment of a query with one target.

    Coordinates are 1-based and inclusive, on the sense strand of both sequences.

    Attributes:
        raw_score: the alignment score (match +1, mismatch -1, gaps 3 + 1 per further nt).
        query_start: first aligned query position.
        query_end: last aligned query position.
        target_start: first aligned target position.
        target_end: last aligned target position.
        length: alignment columns (matches, mismatches and gap positions).
        identities: columns with the same nucleotide in both.
        mismatches: columns with different nucleotides.
        gap_opens: runs of gap columns (in either sequence).
        bit_score: ``(lambda * raw_score - ln K) / ln 2`` with the model's Karlin-Altschul
            constants.
    """

    raw_score: float
    query_start: int
    query_end: int
    target_start: int
    target_end: int
    length: int
    identities: int
    mismatches: int
    gap_opens: int
    bit_score: float

    @property
    def percent_identity(self) -> float:
        """Identities over alignment columns, in percent (BLAST's ``pident``)."""
        return 100.0 * self.identities / self.length if self.length else 0.0


@dataclass
class Hit:
    """One database sequence found for a query.

    Attributes:
        target_id: id of the database sequence.
        score: the score hits are ranked by (cosine similarity unless re-ranked).
        family: Rfam family of the target, ``""`` if unknown.
        clan: Rfam clan of the target, ``""`` if unknown.
        length: target length in nucleotides.
        sequence: the target sequence (for ``retrieved_homologs.fasta``).
        embedding_score: cosine similarity of query and target vectors.
        alignment_score: re-ranking score, ``None`` without re-ranking.
        evalue: E-value of the alignment for the database searched, ``None`` until computed
            (:func:`rinalmo_search.rerank.describe_alignments`).
        alignment: the alignment's coordinates and counts, ``None`` until computed.
    """

    target_id: str
    score: float
    family: str = ""
    clan: str = ""
    length: int = 0
    sequence: str = ""
    embedding_score: float | None = None
    alignment_score: float | None = None
    evalue: float | None = None
    alignment: Alignment | None = None


@dataclass(frozen=True)
class DatabaseSize:
    """The database a search's E-values are computed for.

    Attributes:
        sequences: sequences in the collection searched.
        residues: their total length (nt).
        exact: False when ``residues`` is estimated from a sample of stored lengths.
    """

    sequences: int
    residues: float
    exact: bool = True

    def describe(self) -> str:
        """One line for the table's header block."""
        how = "" if self.exact else " (estimated: count x mean stored length of a sample)"
        return f"{self.sequences} sequences, {self.residues:.0f} nt{how}"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value) if value != "" else "NA"


def _header_block(database: DatabaseSize | None) -> list[str]:
    lines = ["# rinalmo-search hits table (tab-separated; lines starting with '#' are comments)"]
    if database is not None:
        lines.append(f"# database: {database.describe()}")
    lines += [f"# {name}: {text}" for name, text in COLUMN_DOCS.items()]
    return lines


def write_hits_tsv(
    results: Iterable[tuple[str, list[Hit]]],
    path: str | Path,
    *,
    database: DatabaseSize | None = None,
) -> int:
    """Write ``(query_id, hits)`` pairs as the hits table, atomically (``-``: standard output).

    Arguments:
        results: each query's id and hits, best first.
        path: the table (``-``: standard output).
        database: the database the E-values are for (named in the ``#`` block).

    Returns:
        Number of hit rows written.
    """
    rows = 0
    with open_output(path) as handle:
        handle.writelines(line + "\n" for line in _header_block(database))
        handle.write("\t".join(HIT_COLUMNS) + "\n")
        for query_id, hits in results:
            for rank, hit in enumerate(hits, start=1):
                aln = hit.alignment
                cells = (
                    query_id,
                    rank,
                    hit.target_id,
                    hit.score,
                    hit.family,
                    hit.clan,
                    hit.length,
                    hit.embedding_score,
                    hit.alignment_score,
                    hit.evalue,
                    *((aln.query_start, aln.query_end, aln.target_start, aln.target_end)
                      if aln is not None else (None,) * 4),
                )
                handle.write("\t".join(_cell(c) for c in cells) + "\n")
                rows += 1
    return rows


def write_blast6(results: Iterable[tuple[str, list[Hit]]], path: str | Path) -> int:
    """Write ``(query_id, hits)`` as BLAST's 12 tabular columns (``-outfmt 6``), atomically.

    Every column is computed from the hit's own Smith-Waterman alignment
    (:attr:`Hit.alignment`): ``pident`` is identities over alignment columns, ``bitscore`` is
    ``(lambda * S - ln K) / ln 2`` with the model's fitted Karlin-Altschul constants and
    ``evalue`` is :attr:`Hit.evalue`. The scoring scheme is ours (+1/-1, gaps 3/1), not
    BLASTn's, so bit scores and E-values are comparable between our hits, not to BLASTn's.
    No header (as BLAST writes it); rows in rank order; a hit without an alignment is skipped.

    Returns:
        Number of rows written.
    """
    rows = 0
    with open_output(path) as handle:
        for query_id, hits in results:
            for hit in hits:
                aln = hit.alignment
                if aln is None:
                    continue
                cells = (query_id, hit.target_id, f"{aln.percent_identity:.3f}", aln.length,
                         aln.mismatches, aln.gap_opens, aln.query_start, aln.query_end,
                         aln.target_start, aln.target_end,
                         "" if hit.evalue is None else f"{hit.evalue:.2e}",
                         f"{aln.bit_score:.1f}")
                handle.write("\t".join(str(c) for c in cells) + "\n")
                rows += 1
    return rows


def read_hits_tsv(path: str | Path) -> list[dict[str, str]]:
    """Read a hits table back as a list of column → value dicts (``#`` lines skipped)."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]
