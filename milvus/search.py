"""Reads: nearest-neighbour searches, counts, look-ups by id, and filter expressions.

Reads use the store's consistency level (``Bounded`` by default), ``Strong`` once the store
has written (:meth:`~.base.StoreBase._read_consistency`), and return only the fields asked for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from pymilvus import MilvusException

from rinalmo_search.errors import StoreError
from rinalmo_search.hits import Hit
from rinalmo_search.seqio import sequence_hash

from . import schema as S
from .base import HASH_LOOKUP_BATCH, StoreBase
from .connection import milvus_errors

#: Stage-1 fields a search returns by default (``length`` is derived from the sequence).
HIT_FIELDS = (S.SEQUENCE, S.FAMILY, S.CLAN)
#: Stored scalar fields a search filter may use (named in messages about a bad filter).
_FILTER_FIELDS = (S.ID, S.FAMILY, S.CLAN, S.LENGTH, S.SOURCE)


class Reads(StoreBase):
    """Searching the collection and reading rows back."""

    def count(self) -> int:
        """Number of sequences stored (deleted ones excluded)."""
        target = self._require_target()
        self._ensure_loaded(target)
        with milvus_errors(f"count rows of {target!r}"):
            rows = self.client.query(
                target,
                filter="",
                output_fields=["count(*)"],
                consistency_level=self._read_consistency(),
            )
        return int(rows[0]["count(*)"])

    def residues(self, sample: int = 1000) -> tuple[int, float, bool]:
        """The database size a search's E-values are computed for.

        The count is exact; the residues are the sum of the stored lengths when the collection
        holds at most ``sample`` sequences, else the count times the mean length of ``sample``
        stored sequences (a scan of the ``length`` field costs ~2 ms per row on Milvus Lite).

        Returns:
            ``(sequences, residues in nt, whether the residues are exact)``.
        """
        sequences = self.count()
        if sequences == 0:
            return 0, 0.0, True
        target = self._require_target()
        with milvus_errors(f"read sequence lengths of {target!r}"):
            rows = self.client.query(
                target, filter="", output_fields=[S.LENGTH], limit=min(sequences, sample),
                consistency_level=self._read_consistency(),
            )
        lengths = [int(row[S.LENGTH]) for row in rows]
        exact = len(lengths) >= sequences
        residues = float(sum(lengths)) if exact else sequences * sum(lengths) / max(len(lengths), 1)
        return sequences, residues, exact

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored fields (no vector) of those of ``ids`` that exist, in no particular order."""
        target = self._require_target()
        self._ensure_loaded(target)
        with milvus_errors(f"get rows from {target!r}"):
            rows = self.client.get(
                target,
                ids=list(ids),
                output_fields=S.OUTPUT_FIELDS,
                consistency_level=self._read_consistency(),
            )
        return [dict(row) for row in rows]

    def search(
        self,
        vectors: np.ndarray,
        *,
        top_k: int,
        filter: str = "",  # noqa: A002 - Milvus's own name for it
        ef: int | None = None,
        fields: Sequence[str] = HIT_FIELDS,
        copies: bool = True,
    ) -> list[list[Hit]]:
        """Nearest stored sequences of each query vector, best first.

        Arguments:
            vectors: ``(n, dim)`` query vectors (one row is accepted as a 1-D array).
            top_k: hits per query.
            filter: a Milvus boolean expression on the scalar fields, e.g.
                ``family == "RF00005" and length >= 50`` (see :func:`build_filter`).
            ef: HNSW search breadth (default from the index settings; at least ``top_k``).
            fields: stored fields to return with each hit, of ``sequence``, ``family``,
                ``clan``, ``length``, ``source``: ask only for what the caller needs (each
                field is read for all ``top_k`` hits). ``Hit.length`` comes from ``length``
                or, without it, from the sequence.
            copies: follow each hit with the other ids stored with its sequence (see
                Returns). A two-stage search re-ranks without them and adds them to its final
                hits only (:meth:`add_copies`): copies align exactly as their hit does, and
                looking up 1,000 candidates' copies costs as much as the search itself.

        Returns:
            One list of at most ``top_k`` :class:`Hit` per query row; ``score`` and
            ``embedding_score`` are the cosine similarity (inner product for
            ``metric="IP"``). Every id stored with the same sequence as a hit follows it, with
            its score, whether or not the HNSW graph reached it (one extra look-up by content
            hash per call, only in a collection where ids share content).

        Raises:
            StoreError: bad ``top_k`` or vector shape, an invalid filter, or a Milvus error.
        """
        if not isinstance(top_k, int) or top_k < 1:
            raise StoreError(f"Invalid 'top_k' value: {top_k!r} (expected a positive integer)")
        target = self._require_target()
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if self._stored is None or self._building:
            self._stored = self.stored_model()
        tag, dim = self._stored
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise StoreError(
                f"Expected query vectors of dimension {dim} (model {tag!r}), found shape "
                f"{queries.shape}"
            )
        if len(queries) == 0:
            return []
        if self._dirty:
            # Unflushed rows are searched by brute force (Lite) or from growing segments.
            self.flush()
        self._ensure_loaded(target)
        # Through the alias, so a version swapped in by `promote` is used at once.
        name = target if self._building else self.alias
        wanted = [f for f in fields if f != S.CONTENT_HASH]
        action = f"search {name!r}" + (f" with filter {filter!r}" if filter else "")
        with milvus_errors(action):
            results = self.client.search(
                name,
                data=queries.tolist(),
                limit=top_k,
                filter=filter,
                output_fields=[*wanted, S.CONTENT_HASH],
                search_params=self.settings.search_params(top_k, ef),
                anns_field=S.VECTOR,
                consistency_level=self._read_consistency(),
            )
        found = [[_raw_hit(hit) for hit in hits] for hits in results]
        same = (
            self._same_content(name, [h[S.CONTENT_HASH] for hits in found for h in hits],
                               filter, wanted, action)
            if copies and self._shared
            else {}
        )
        return [_with_copies(hits, same, top_k) for hits in found]

    def add_copies(
        self, results: Sequence[list[Hit]], *, top_k: int, filter: str = ""  # noqa: A002
    ) -> list[list[Hit]]:
        """Each hit followed by the other ids stored with its sequence, as :meth:`search`
        does with ``copies``: same scores (a copy aligns as its hit does), its own labels.

        Arguments:
            results: hits per query, best first (from a search with ``copies=False``).
            top_k: hits kept per query after adding the copies.
            filter: the search's filter (copies must pass it too).

        Returns:
            The hit lists with copies inserted after their hit, each cut to ``top_k``.
        """
        if not self._shared or not any(results):
            return [list(hits[:top_k]) for hits in results]
        name = self.alias if not self._building else self._require_target()
        hashes = [sequence_hash(hit.sequence) for hits in results for hit in hits]
        same = self._same_content(name, hashes, filter, [S.FAMILY, S.CLAN], f"search {name!r}")
        out = []
        for hits in results:
            seen: set[str] = set()
            kept: list[Hit] = []
            for hit in hits:
                rows = same.get(sequence_hash(hit.sequence), [])
                for copy in [hit, *(_relabelled(hit, row) for row in rows)]:
                    if copy.target_id not in seen:
                        seen.add(copy.target_id)
                        kept.append(copy)
            out.append(kept[:top_k])
        return out

    def _same_content(
        self,
        name: str,
        hashes: Sequence[str],
        filter: str,  # noqa: A002
        fields: list[str],
        action: str,
    ) -> dict[str, list[dict[str, Any]]]:
        """content hash → every stored row with it (passing ``filter``), for the hits' hashes.

        HNSW can leave some of several identical vectors unreachable (issue 15: 2 of 18,000
        rows, six ids per sequence, never found even at ef=2,000), so a search hands back
        every id stored with the content of a hit instead of trusting the graph to reach each.
        """
        hashes = list(dict.fromkeys(hashes))
        rows: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(hashes), HASH_LOOKUP_BATCH):
            chunk = hashes[start : start + HASH_LOOKUP_BATCH]
            expression = f"{S.CONTENT_HASH} in {json.dumps(chunk)}"
            with milvus_errors(action):
                for row in self.client.query(
                    name,
                    filter=f"({expression}) and ({filter})" if filter else expression,
                    output_fields=[S.ID, S.CONTENT_HASH, *fields],
                    consistency_level=self._read_consistency(),
                ):
                    rows.setdefault(str(row[S.CONTENT_HASH]), []).append(dict(row))
        for same in rows.values():
            same.sort(key=lambda row: str(row[S.ID]))
        return rows

    def check_filter(self, expression: str) -> None:
        """Check a filter expression on the collection now, before a long search.

        Does nothing for an empty expression or a missing collection (searching reports it).

        Raises:
            StoreError: Milvus cannot parse or apply the expression (one line, with the
                fields that can be filtered on).
        """
        if not expression.strip():
            return
        target = self.physical_name()
        if target is None:
            return
        self._ensure_loaded(target)
        # pymilvus logs every refused call with a traceback; this refusal is the answer
        rpc_log = logging.getLogger("pymilvus.decorators")
        was_disabled, rpc_log.disabled = rpc_log.disabled, True
        try:
            self.client.query(target, filter=expression, output_fields=[S.ID], limit=1)
        except MilvusException as error:
            reason = "; ".join(
                line.strip() for line in str(error.message).splitlines()
                if line.strip() and line.strip() != "^" and line.strip() != expression.strip()
            )
            raise StoreError(
                f"Invalid filter {expression!r}: {reason} (fields: {', '.join(_FILTER_FIELDS)}; "
                "e.g. 'clan == \"CL00001\" and length >= 50')"
            ) from None
        finally:
            rpc_log.disabled = was_disabled


def _raw_hit(hit: Any) -> dict[str, Any]:
    """A search result as a plain dict: its fields, ``id`` and ``distance``."""
    entity = hit.get("entity", {}) if isinstance(hit, dict) else hit.entity
    return {**entity, S.ID: str(hit["id"]), "distance": float(hit["distance"])}


def _with_copies(
    hits: list[dict[str, Any]], copies: dict[str, list[dict[str, Any]]], top_k: int
) -> list[Hit]:
    """``hits`` best first, each followed by the other ids of its content (same score)."""
    out: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        for row in [hit, *copies.get(hit[S.CONTENT_HASH], [])]:
            if row[S.ID] not in seen:
                seen.add(row[S.ID])
                out.append(_to_hit(row, hit["distance"]))
    return out[:top_k]


def _relabelled(hit: Hit, row: dict[str, Any]) -> Hit:
    """``hit`` as the stored row ``row`` of the same sequence: its id and labels."""
    return replace(
        hit,
        target_id=str(row[S.ID]),
        family=str(row.get(S.FAMILY) or ""),
        clan=str(row.get(S.CLAN) or ""),
    )


def _to_hit(entity: dict[str, Any], score: float) -> Hit:
    sequence = str(entity.get(S.SEQUENCE) or "")
    return Hit(
        target_id=str(entity[S.ID]),
        score=score,
        family=str(entity.get(S.FAMILY) or ""),
        clan=str(entity.get(S.CLAN) or ""),
        length=int(entity.get(S.LENGTH) or len(sequence)),
        sequence=sequence,
        embedding_score=score,
    )


def build_filter(
    *,
    family: str | Sequence[str] | None = None,
    clan: str | Sequence[str] | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    source: str | None = None,
) -> str:
    """A Milvus filter expression from common criteria, values quoted safely.

    Arguments:
        family: one family accession or several (any of them).
        clan: one clan accession or several.
        min_length: keep sequences at least this long.
        max_length: keep sequences at most this long.
        source: keep sequences whose source starts with this text.

    Returns:
        The expression (``""`` when no criterion is given), e.g.
        ``family in ["RF00005"] and length >= 50``.
    """
    parts: list[str] = []
    for name, value in ((S.FAMILY, family), (S.CLAN, clan)):
        if value:
            values = [value] if isinstance(value, str) else list(value)
            parts.append(f"{name} in {json.dumps(values)}")
    if min_length is not None:
        parts.append(f"{S.LENGTH} >= {int(min_length)}")
    if max_length is not None:
        parts.append(f"{S.LENGTH} <= {int(max_length)}")
    if source:
        escaped = source.replace("\\", "\\\\").replace('"', '\\"').replace("%", "\\%")
        parts.append(f'{S.SOURCE} like "{escaped}%"')
    return " and ".join(parts)
