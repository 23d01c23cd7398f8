"""Fixtures of the training tests: small splits of real Rfam seed families."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rinalmo_search.training.prepare import PrepareOptions, prepare_dataset

#: 28 real seed families (5-80 sequences, median length <= 200 nt), two clans of two families.
TINY_FAMILIES = [
    "RF00002",
    "RF00006",
    "RF00007",
    "RF00016",
    "RF00021",
    "RF00025",
    "RF00027",
    "RF00031",
    "RF00032",
    "RF00037",
    "RF00041",
    "RF00042",
    "RF00047",
    "RF00048",
    "RF00049",
    "RF00051",
    "RF00053",
    "RF00056",
    "RF00057",
    "RF00066",
    "RF00087",
    "RF00136",
    "RF00133",
    "RF00134",
    "RF00094",
    "RF00104",
    "RF00108",
    "RF00127",
]


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # 2 cores shared by several engineers' test suites
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_split(shared_rfam: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared split (MMseqs2 de-dup, 60/20/20) of :data:`TINY_FAMILIES`."""
    out = tmp_path_factory.mktemp("tiny-split")
    prepare_dataset(
        shared_rfam,
        out,
        PrepareOptions(families=TINY_FAMILIES, fractions=(0.6, 0.2, 0.2), seed=0, threads=1),
    )
    return out


@pytest.fixture(scope="session")
def tiny_families() -> list[str]:
    """:data:`TINY_FAMILIES`, for tests that prepare their own split."""
    return list(TINY_FAMILIES)


@pytest.fixture(scope="session")
def train_split(shared_rfam: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared split (MMseqs2, 60/20/20) of 100 real families: the first, by accession, with
    10-60 seed sequences and a median length of 60-200 nt (about 1,100 sequences kept)."""
    families = []
    with (shared_rfam / "families.tsv").open() as handle:
        header = next(handle).rstrip("\n").split("\t")
        for line in handle:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=True))
            if 10 <= int(row["n_seq_kept"]) <= 60 and 60 <= float(row["median_len"]) <= 200:
                families.append(row["accession"])
    out = tmp_path_factory.mktemp("train-split")
    prepare_dataset(
        shared_rfam,
        out,
        PrepareOptions(
            families=sorted(families)[:100], fractions=(0.6, 0.2, 0.2), seed=0, threads=1
        ),
    )
    return out
