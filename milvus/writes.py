"""Writes: de-duplicated inserts and upserts, deletes, flushes, and the store's limits.

An ``index`` run rewrites nothing already stored: :meth:`Writes.new_records` looks ids up
(``Strong``, so another process's writes count) and keeps the records that are new or, with
``upsert``, changed. :func:`check_limits` checks a whole input against the field sizes of
:mod:`.schema` before the first write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from rinalmo_search.embedder import ModelInfo

from rinalmo_search.errors import InputError, StoreError
from rinalmo_search.seqio import SequenceRecord

from . import schema as S
from .base import HASH_LOOKUP_BATCH, LOOKUP_BATCH, StoreBase
from .connection import milvus_errors

log = logging.getLogger(__name__)

#: Rows per insert/upsert request (a 512-d float row is ~2 KB; requests stay well under 64 MB).
WRITE_BATCH = 1000
#: Bytes of sequence text per write request: long sequences (up to 64 KB each) must not push
#: a request past gRPC's 64 MB message limit.
WRITE_BATCH_BYTES = 16 * 1024 * 1024


class Writes(StoreBase):
    """Inserting, upserting and deleting records."""

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """id → content hash for those of ``ids`` already stored."""
        target = self._require_target()
        self._ensure_loaded(target)
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), LOOKUP_BATCH):
            chunk = unique[start : start + LOOKUP_BATCH]
            with milvus_errors(f"look up {len(chunk)} ids in {target!r}"):
                # Strong: de-duplication must see every write, also another process's
                rows = self.client.get(
                    target,
                    ids=chunk,
                    output_fields=[S.ID, S.CONTENT_HASH],
                    consistency_level="Strong",
                )
            for row in rows:
                found[str(row[S.ID])] = str(row[S.CONTENT_HASH])
        return found

    def new_records(
        self, records: Sequence[SequenceRecord], *, upsert: bool = False
    ) -> list[SequenceRecord]:
        """The records that still need writing, in input order.

        A record whose id is stored with the same content hash is skipped. The same id with
        another content hash is an error, unless ``upsert`` (then it is returned for rewriting).
        Repeats of one id within ``records`` are returned once.

        Raises:
            StoreError: an id is stored with different content and ``upsert`` is false.
        """
        stored = self.stored_hashes([r.id for r in records])
        todo: list[SequenceRecord] = []
        seen: set[str] = set()
        for record in records:
            if record.id in seen:
                continue
            seen.add(record.id)
            old = stored.get(record.id)
            if old is None:
                todo.append(record)
            elif old != record.content_hash:
                if not upsert:
                    raise StoreError(
                        f"Sequence {record.id!r} ({record.source or 'input'}) is already stored "
                        f"in {self.alias!r} with a different sequence (content hash {old}, "
                        f"new {record.content_hash}); use --upsert to replace it"
                    )
                todo.append(record)
        return todo

    def insert(
        self,
        records: Sequence[SequenceRecord],
        vectors: np.ndarray,
        *,
        upsert: bool = False,
        checked: bool = False,
    ) -> int:
        """Write records and their vectors; returns the number of rows written.

        Without ``upsert``, records already stored with the same content are skipped (so a
        rerun of an interrupted job writes only what is missing), and changed content is an
        error. With ``upsert``, new and changed records are written, unchanged ones skipped.
        ``checked`` says the records came from :meth:`new_records` already (with the same
        ``upsert``), so the store does not look their ids up again.

        Raises:
            InputError: a field too long (:func:`check_limits`).
            StoreError: no model set, vectors of the wrong shape or not finite, or Milvus
                refused the write.
        """
        model = self._require_model()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(records), model.dim):
            raise StoreError(
                f"Expected vectors of shape ({len(records)}, {model.dim}) for "
                f"{len(records)} records of model {model.tag!r}, found {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
            raise StoreError(f"Vector of {records[bad].id!r} has NaN or infinite values")
        todo = list(records) if checked else self.new_records(records, upsert=upsert)
        if not todo:
            return 0
        position = {r.id: i for i, r in enumerate(records)}
        rows = [self._row(r, vectors[position[r.id]], model) for r in todo]
        target = self._require_target()
        written = 0
        for batch in _write_batches(rows):
            with milvus_errors(f"write {len(batch)} rows to {target!r}"):
                if upsert:
                    self.client.upsert(target, batch)
                else:
                    self.client.insert(target, batch)
            written += len(batch)
            self._dirty = self._wrote = True
        if not self._shared:
            self._note_shared_content(target, [row[S.CONTENT_HASH] for row in rows])
        return written

    def _note_shared_content(self, target: str, hashes: list[str]) -> None:
        """Mark the collection when an id just written shares its content with another id.

        Checked after the write with ``Strong`` reads, so of two processes writing copies of
        one sequence at once, the later check sees both. Costs one scan of the collection per
        :data:`HASH_LOOKUP_BATCH` rows written, until the mark is set.
        """
        unique = list(dict.fromkeys(hashes))
        shared = len(unique) < len(hashes)
        for start in range(0, len(unique), HASH_LOOKUP_BATCH):
            if shared:
                break
            chunk = unique[start : start + HASH_LOOKUP_BATCH]
            with milvus_errors(f"look up {len(chunk)} content hashes in {target!r}"):
                rows = self.client.query(
                    target,
                    filter=f"{S.CONTENT_HASH} in {json.dumps(chunk)}",
                    output_fields=[S.ID],
                    limit=len(chunk) + 1,
                    consistency_level="Strong",
                )
            shared = len(rows) > len(chunk)
        if shared:
            with milvus_errors(f"mark {target!r} as holding shared sequences"):
                self.client.alter_collection_properties(
                    target, properties={S.PROPERTY_SHARED_CONTENT: "1"}
                )
            self._shared = True
            log.info("%s now holds ids that share a sequence", target)

    @staticmethod
    def _row(record: SequenceRecord, vector: np.ndarray, model: ModelInfo) -> dict[str, Any]:
        check_limits([record])
        source = record.source
        if len(source.encode("utf-8")) > S.MAX_SOURCE_LENGTH:
            source = source.encode("utf-8")[-S.MAX_SOURCE_LENGTH :].decode("utf-8", "ignore")
        return {
            S.ID: record.id,
            S.VECTOR: vector.tolist(),
            S.SEQUENCE: record.sequence,
            S.LENGTH: len(record.sequence),
            S.CONTENT_HASH: record.content_hash,
            S.FAMILY: record.family,
            S.CLAN: record.clan,
            S.SOURCE: source,
            S.MODEL: model.tag,
        }

    def flush(self) -> None:
        """Make written rows durable and indexed (Milvus Lite builds its HNSW graphs here)."""
        target = self._require_target()
        with milvus_errors(f"flush {target!r}"):
            self.client.flush(target)
        self._dirty = False

    def delete(self, ids: Sequence[str]) -> int:
        """Delete sequences by id; returns how many of them were stored."""
        present = list(self.stored_hashes(ids))
        if not present:
            return 0
        target = self._require_target()
        for start in range(0, len(present), LOOKUP_BATCH):
            with milvus_errors(f"delete ids from {target!r}"):
                self.client.delete(target, ids=present[start : start + LOOKUP_BATCH])
        self._dirty = self._wrote = True
        return len(present)


def check_limits(records: Sequence[SequenceRecord]) -> None:
    """Check every record fits the store's fields, before anything is written.

    Limits (bytes of UTF-8, from :mod:`~rinalmo_search.milvus.schema`): id
    :data:`~.schema.MAX_ID_LENGTH`, sequence :data:`~.schema.MAX_SEQUENCE_LENGTH`, family and
    clan :data:`~.schema.MAX_LABEL_LENGTH`; a longer source is cut, not refused.

    Raises:
        InputError: the first record over a limit, named by its ``path:line``.
    """
    for record in records:
        for name, value, limit in (
            (S.ID, record.id, S.MAX_ID_LENGTH),
            (S.SEQUENCE, record.sequence, S.MAX_SEQUENCE_LENGTH),
            (S.FAMILY, record.family, S.MAX_LABEL_LENGTH),
            (S.CLAN, record.clan, S.MAX_LABEL_LENGTH),
        ):
            size = len(value.encode("utf-8"))
            if size > limit:
                unit = "nt" if name == S.SEQUENCE else "bytes"
                raise InputError(
                    f"{record.source or 'input'}: record {record.id[:80]!r}: {name} is {size:,} "
                    f"{unit} long, the store accepts at most {limit:,}; nothing was written"
                )


def _write_batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split rows into requests of at most WRITE_BATCH rows and WRITE_BATCH_BYTES of text."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(row[S.SEQUENCE]) + len(row[S.SOURCE]) + 4 * len(row[S.VECTOR]) + 256
        if batch and (len(batch) >= WRITE_BATCH or size + row_size > WRITE_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch
