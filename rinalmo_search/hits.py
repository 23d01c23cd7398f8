"""Search hits and the hits table every search writes.

Columns (tab-separated, header first): ``query_id rank target_id score family clan
target_length``, then ``embedding_score`` and ``alignment_score`` (empty when no re-ranking ran).
Missing labels are written as ``NA``; scores with 6 significant digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .seqio import open_output

HIT_COLUMNS = (
    "query_id",
    "rank",
    "target_id",
    "score",
    "family",
    "clan",
    "target_length",
    "embedding_score",
    "alignment_score",
)


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
    """

    target_id: str
    score: float
    family: str = ""
    clan: str = ""
    length: int = 0
    sequence: str = ""
    embedding_score: float | None = None
    alignment_score: float | None = None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value) if value != "" else "NA"


def write_hits_tsv(results: Iterable[tuple[str, list[Hit]]], path: str | Path) -> int:
    """Write ``(query_id, hits)`` pairs as the hits table, atomically (``-``: standard output).

    Returns:
        Number of hit rows written.
    """
    rows = 0
    with open_output(path) as handle:
        handle.write("\t".join(HIT_COLUMNS) + "\n")
        for query_id, hits in results:
            for rank, hit in enumerate(hits, start=1):
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
                )
                handle.write("\t".join(_cell(c) for c in cells) + "\n")
                rows += 1
    return rows


def read_hits_tsv(path: str | Path) -> list[dict[str, str]]:
    """Read a hits table back as a list of column → value dicts."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]
