"""Dataset preparation: filters, de-duplication, and a deterministic clan-grouped split."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rinalmo_search.training.prepare import (
    PrepareOptions,
    load_split,
    prepare_dataset,
    split_families,
)
from rinalmo_search.training.rfam import Family

from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.seqio import read_fasta

SPLIT_FILES = ("split.json", "sequences.fasta", "families.tsv")


def _clan_sides(split_dir: Path) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = defaultdict(set)
    for line in (split_dir / "families.tsv").read_text().splitlines()[1:]:
        accession, _, clan, side = line.split("\t")[:4]
        if side != "dropped":
            sides[clan if clan != "NA" else accession].add(side)
    return sides


def test_tiny_split_files(tiny_split: Path, tiny_families: list[str]) -> None:
    split = load_split(tiny_split)
    manifest = json.loads((tiny_split / "manifest.json").read_text())
    assert manifest["options"]["dedup"] == "mmseqs" and manifest["tool_versions"]["mmseqs"]
    assert manifest["inputs"]["seeds/RF00002.sto"]  # checksums of what was read
    records = [r for name in split.records for r in split.records[name]]
    assert all(50 <= len(r.sequence) <= 1024 for r in records)
    # no identical sequence twice in a family
    pairs = [(r.family, r.sequence) for r in records]
    assert len(pairs) == len(set(pairs))
    counts = manifest["counts"]
    assert counts["sequences_after_dedup"] < counts["sequences_length_ok"]
    # headers carry RF/CL labels read back by seqio, and the split name
    for record in read_fasta(tiny_split / "sequences.fasta"):
        assert record.description.split()[1] == (split.families[record.family].clan or "NA")
        assert record.description.endswith(f"split={split.family_split[record.family]}")
    # families of a clan stay together
    assert all(len(sides) == 1 for sides in _clan_sides(tiny_split).values())
    assert split.family_split["RF00133"] == split.family_split["RF00134"]  # clan CL00054
    assert {r.family for r in records} <= set(tiny_families)


def test_same_inputs_give_the_identical_split(shared_rfam: Path, tiny_split: Path,
                                              tiny_families: list[str], tmp_path: Path) -> None:
    prepare_dataset(shared_rfam, tmp_path, PrepareOptions(
        families=tiny_families, fractions=(0.6, 0.2, 0.2), seed=0, threads=1,
    ))
    for name in SPLIT_FILES:
        assert (tmp_path / name).read_bytes() == (tiny_split / name).read_bytes(), name


def test_whole_shared_folder_twice_identical_and_clan_grouped(shared_rfam: Path,
                                                              tmp_path: Path) -> None:
    """The CLI on all 2,726 families (exact de-dup keeps this test short; MMseqs2 on the
    whole set takes about a minute and is measured in the report)."""
    outputs = []
    for run in ("a", "b"):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "rinalmo_search", "-q", "data", "prepare",
             "--rfam-dir", str(shared_rfam), "--out", str(tmp_path / run), "--dedup", "exact"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(tmp_path / run)
        print(f"prepare run {run}: {time.perf_counter() - started:.1f} s")
    for name in SPLIT_FILES:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    sides = _clan_sides(outputs[0])
    assert all(len(s) == 1 for s in sides.values()), "a clan straddles the split"
    split = json.loads((outputs[0] / "split.json").read_text())
    n = {name: len(split[name]) for name in ("train", "validation", "test")}
    total = sum(n.values())
    assert abs(n["train"] / total - 0.8) < 0.02
    assert abs(n["validation"] / total - 0.1) < 0.02 and abs(n["test"] / total - 0.1) < 0.02
    manifest = json.loads((outputs[0] / "manifest.json").read_text())
    by_split = manifest["counts"]["by_split"]
    assert by_split["validation"]["clans"] > 0 and by_split["test"]["clans"] > 0


def test_split_function_never_splits_a_clan() -> None:
    rng = np.random.default_rng(3)
    families = {f"RF{i:05d}": Family(f"RF{i:05d}", clan=f"CL{rng.integers(0, 40):05d}"
                                     if rng.random() < 0.4 else "") for i in range(600)}
    for seed in range(5):
        assignment = split_families(families, sorted(families), fractions=(0.8, 0.1, 0.1),
                                    seed=seed)
        sides = defaultdict(set)
        for accession, side in assignment.items():
            sides[families[accession].clan or accession].add(side)
        assert all(len(s) == 1 for s in sides.values())
        shares = np.bincount(
            [("train", "validation", "test").index(s) for s in assignment.values()]
        ) / len(assignment)
        assert np.allclose(shares, [0.8, 0.1, 0.1], atol=0.03)
    other = split_families(families, sorted(families), fractions=(0.8, 0.1, 0.1), seed=99)
    assert other != split_families(families, sorted(families), fractions=(0.8, 0.1, 0.1), seed=0)


def test_bad_options_and_inputs(shared_rfam: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Invalid split fractions: \(0.5, 0.1, 0.1\)"):
        prepare_dataset(shared_rfam, tmp_path, PrepareOptions(fractions=(0.5, 0.1, 0.1)))
    with pytest.raises(ConfigError, match="Invalid length range: 300..100"):
        prepare_dataset(shared_rfam, tmp_path, PrepareOptions(min_length=300, max_length=100))
    with pytest.raises(InputError, match="requested families not found: RF99999"):
        prepare_dataset(shared_rfam, tmp_path, PrepareOptions(families=["RF99999"]))
    with pytest.raises(InputError, match="not a split folder"):
        load_split(tmp_path)


def test_missing_mmseqs_is_a_tool_error_with_advice(shared_rfam: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from rinalmo_search.errors import ToolError

    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without mmseqs
    with pytest.raises(ToolError, match="MMseqs2 not found.*--dedup exact"):
        prepare_dataset(shared_rfam, tmp_path / "out",
                        PrepareOptions(families=["RF00002", "RF00006"]))
