"""Checking what index Milvus actually built.

Milvus Lite (the embedded, pure-Python Milvus) stores each flushed segment as a Parquet file
plus one faiss index file per segment. It accepts HNSW parameters it then ignores (the flat
``add_index(..., M=64)`` form builds M=16 while ``describe_index`` looks fine), so the only
trustworthy check is to read the faiss files back: ``hnsw.nb_neighbors(1)`` is M (level 0
keeps 2*M links) and ``hnsw.efConstruction`` is stored in the file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import IndexSettings

log = logging.getLogger(__name__)


@dataclass
class SegmentIndex:
    """One Milvus Lite segment's faiss index, as read from disk."""

    file: str
    kind: str
    rows: int
    M: int
    ef_construction: int
    inner_product: bool


@dataclass
class IndexReport:
    """The index Milvus describes, the faiss indexes it built (Lite), and the request."""

    collection: str
    settings: IndexSettings
    description: dict[str, Any]
    segments: list[SegmentIndex] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every way the built index differs from :attr:`settings` (empty when it matches)."""
        found: list[str] = []
        info = self.description
        if str(info.get("index_type", "")).upper() != "HNSW":
            found.append(f"index type is {info.get('index_type')!r}, expected 'HNSW'")
        if str(info.get("metric_type", "")).upper() != self.settings.metric:
            found.append(
                f"metric is {info.get('metric_type')!r}, expected {self.settings.metric!r}"
            )
        params = _described_params(info)
        for key, expected in self.settings.build_params().items():
            if key in params and int(params[key]) != expected:
                found.append(f"described {key}={params[key]}, expected {expected}")
        for segment in self.segments:
            if segment.kind != "IndexHNSWFlat":
                found.append(f"{segment.file}: faiss {segment.kind}, expected IndexHNSWFlat")
                continue
            if segment.M != self.settings.M:
                found.append(f"{segment.file}: faiss M={segment.M}, expected {self.settings.M}")
            if segment.ef_construction != self.settings.ef_construction:
                found.append(
                    f"{segment.file}: faiss efConstruction={segment.ef_construction}, "
                    f"expected {self.settings.ef_construction}"
                )
            if not segment.inner_product:
                found.append(f"{segment.file}: faiss metric is not inner product (cosine)")
        return found

    def summary(self) -> str:
        """One line: type, metric, parameters, and the faiss segments' M when known."""
        info = self.description
        text = (
            f"{self.collection}: {info.get('index_type')} {info.get('metric_type')} "
            f"params={_described_params(info)} rows={info.get('total_rows', '?')}"
        )
        if self.segments:
            ms = sorted({s.M for s in self.segments})
            efcs = sorted({s.ef_construction for s in self.segments})
            rows = sum(s.rows for s in self.segments)
            text += (
                f"; faiss: {len(self.segments)} segment(s), {rows} rows, M={ms}, "
                f"efConstruction={efcs}"
            )
        return text


def _described_params(info: dict[str, Any]) -> dict[str, Any]:
    params = info.get("params", {})
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = {}
    merged = dict(params) if isinstance(params, dict) else {}
    for key in ("M", "efConstruction"):
        if key in info:
            merged[key] = info[key]
    return merged


def lite_segment_files(db_path: str, collection: str) -> list[Path]:
    """Data files of the flushed segments of a Milvus Lite collection (from its manifest)."""
    root = Path(db_path) / "collections" / collection
    manifest = root / "manifest.json"
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text(encoding="utf-8"))
    files = []
    for name, partition in data.get("partitions", {}).items():
        for data_file in partition.get("data_files", []):
            files.append(root / "partitions" / name / data_file)
    return files


def _index_file(data_file: Path) -> Path:
    return data_file.parent.parent / "indexes" / f"{data_file.stem}.vector.hnsw.idx"


def lite_unindexed_segments(db_path: str, collection: str) -> list[str]:
    """Flushed Milvus Lite segments that have no HNSW index file yet."""
    return [
        str(f) for f in lite_segment_files(db_path, collection) if not _index_file(f).is_file()
    ]


def lite_segment_indexes(db_path: str, collection: str) -> list[SegmentIndex]:
    """Read the faiss index of every flushed Milvus Lite segment of ``collection``.

    A segment whose HNSW file is missing (not built yet, or another index type) is reported
    with kind ``"missing"``.
    """
    import faiss

    segments = []
    for data_file in lite_segment_files(db_path, collection):
        path = _index_file(data_file)
        if not path.is_file():
            others = sorted(p.name for p in path.parent.glob(f"{data_file.stem}.*"))
            kind = f"missing (found {others})" if others else "missing"
            segments.append(SegmentIndex(data_file.name, kind, 0, 0, 0, False))
            continue
        index = faiss.read_index(str(path))
        kind = type(index).__name__
        if hasattr(index, "hnsw"):
            segments.append(
                SegmentIndex(
                    path.name,
                    kind,
                    int(index.ntotal),
                    int(index.hnsw.nb_neighbors(1)),
                    int(index.hnsw.efConstruction),
                    index.metric_type == faiss.METRIC_INNER_PRODUCT,
                )
            )
        else:
            segments.append(SegmentIndex(path.name, kind, int(index.ntotal), 0, 0, False))
    return segments
