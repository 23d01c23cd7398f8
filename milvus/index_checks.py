"""Checking what index Milvus actually built, and waiting for it.

Milvus Lite (the embedded, pure-Python Milvus) stores each flushed segment as a Parquet file
plus one faiss index file per segment. It accepts HNSW parameters it then ignores (the flat
``add_index(..., M=64)`` form builds M=16 while ``describe_index`` looks fine), so the only
trustworthy check is to read the faiss files back: ``hnsw.nb_neighbors(1)`` is M (level 0
keeps 2*M links) and ``hnsw.efConstruction`` is stored in the file. Milvus Lite has no API for
either (nor for its segments' index progress), so :func:`lite_segment_files` reads its
on-disk layout (``collections/NAME/manifest.json``); a server answers through
``describe_index``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rinalmo_search.errors import StoreError

from . import schema as S
from .base import StoreBase
from .connection import milvus_errors
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
class IndexCheck:
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


class IndexChecks(StoreBase):
    """What index a collection has, whether it is the one asked for, and whether it is built."""

    def describe_index(self) -> dict[str, Any]:
        """Milvus's description of the vector index (type, metric, parameters, progress)."""
        target = self._require_target()
        with milvus_errors(f"describe the index of {target!r}"):
            return dict(self.client.describe_index(target, S.VECTOR))

    def index_report(self) -> IndexCheck:
        """What index Milvus really built, checked against this store's settings.

        For Milvus Lite the faiss index files of every flushed segment are read back, because
        Lite accepts parameters it then ignores (flat ``M=...`` builds M=16).
        """
        target = self._require_target()
        description = self.describe_index()
        segments = lite_segment_indexes(self.uri, target) if self.is_lite else []
        return IndexCheck(target, self.settings, description, segments)

    def verify_index(self) -> IndexCheck:
        """Like :meth:`index_report`, raising if the index is not the HNSW that was asked for.

        Raises:
            StoreError: another index type, metric or parameters (the message lists them).
        """
        report = self.index_report()
        problems = report.problems()
        if problems:
            raise StoreError(
                f"Index of {report.collection!r} is not the requested HNSW "
                f"(M={self.settings.M}, efConstruction={self.settings.ef_construction}, "
                f"{self.settings.metric}): " + "; ".join(problems)
            )
        return report

    def wait_for_index(
        self, timeout: float = 3600.0, poll: float = 0.5, settle: float = 3.0
    ) -> float:
        """Block until every flushed row is covered by the vector index.

        Milvus Lite builds HNSW graphs in a background thread after :meth:`flush` and may then
        merge segments (compaction) and build again, searching unindexed segments by brute
        force meanwhile; so for Lite the segment list must also stay unchanged for ``settle``
        seconds. A server reports ``pending_index_rows``.

        Returns:
            Seconds waited.

        Raises:
            StoreError: the index is not complete after ``timeout`` seconds.
        """
        target = self._require_target()
        started = time.perf_counter()
        last_change = started
        segments: list[str] = []
        while True:
            now = time.perf_counter()
            if self.is_lite:
                current = [str(f) for f in lite_segment_files(self.uri, target)]
                pending = len(lite_unindexed_segments(self.uri, target))
                if current != segments or pending:
                    segments, last_change = current, now
                done = pending == 0 and now - last_change >= settle
            else:
                info = self.describe_index()
                pending = int(info.get("pending_index_rows", 0)) + max(
                    0, int(info.get("total_rows", 0)) - int(info.get("indexed_rows", 0))
                )
                done = pending == 0
            if done:
                # Lite: the build ended before the segment list settled.
                return (last_change if self.is_lite else now) - started
            if now - started > timeout:
                unit = "segments" if self.is_lite else "rows"
                raise StoreError(
                    f"Index of {target!r} still has {pending} {unit} unindexed after "
                    f"{timeout:.0f} s"
                )
            time.sleep(poll)
