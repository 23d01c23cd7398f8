"""Test data shared by the vector-store tests and their helper subprocesses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rinalmo_search.embedder import ModelInfo, l2_normalise
from rinalmo_search.milvus import VectorStore

from rinalmo_search.seqio import SequenceRecord

MODEL = ModelInfo("test-model", "1", 16)

FAMILIES = ("RF00005", "RF00001", "RF00177")
CLANS = {"RF00005": "CL00001", "RF00001": "", "RF00177": "CL00111"}


def make_records(n: int, *, seed: int = 0, prefix: str = "seq") -> list[SequenceRecord]:
    """``n`` distinct random RNA records spread over three families."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        length = int(rng.integers(20, 120))
        sequence = "".join(rng.choice(list("ACGU"), size=length))
        family = FAMILIES[i % len(FAMILIES)]
        records.append(
            SequenceRecord(
                id=f"{prefix}{i}",
                sequence=sequence,
                family=family,
                clan=CLANS[family],
                source=f"test.fa:{2 * i + 1}",
            )
        )
    return records


def make_vectors(n: int, dim: int = MODEL.dim, *, seed: int = 0) -> np.ndarray:
    """``n`` random unit vectors."""
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32))


@dataclass
class Target:
    """Where a test's collection lives."""

    backend: str
    uri: str
    collection: str

    def open(self, **options: object) -> VectorStore:
        return VectorStore(self.uri, collection=self.collection, **options)  # type: ignore[arg-type]
