"""The clan-grouped split, its files, and query selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from rinalmo_search.errors import InputError
from rinalmo_search.evaluation.split import load_split, make_split, write_split
from rinalmo_search.seqio import read_fasta


def test_split_is_clan_grouped_and_deterministic(synthetic_fasta: Path) -> None:
    records = read_fasta(synthetic_fasta)
    first = make_split(records, seed=5, fractions=(0.5, 0.25, 0.25))
    assert first == make_split(records, seed=5, fractions=(0.5, 0.25, 0.25))
    assert set(first.values()) == {"train", "valid", "test"}
    assert first["RF00001"] == first["RF00002"]  # one clan, one side
    assert len(first) == 12


def test_write_and_load_round_trip(synthetic_fasta: Path, tmp_path: Path) -> None:
    records = read_fasta(synthetic_fasta)
    assignment = make_split(records, seed=2, fractions=(0.5, 0.25, 0.25))
    write_split(tmp_path / "split", assignment, records, sequences=synthetic_fasta, seed=2)
    split = load_split(tmp_path / "split")
    assert split.family_split == assignment
    assert len(split.records) == len(records)
    sizes = split.family_sizes()
    expected = [r.id for r in records
                if assignment[r.family] == "test" and sizes[r.family] >= 4]
    assert [q.id for q in split.queries("test")] == expected
    sample = split.queries("test", max_per_family=2)
    assert len(sample) == 2 * len({r.family for r in records if assignment[r.family] == "test"})
    assert set(q.id for q in sample) <= set(expected)


def test_load_split_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="split folder not found"):
        load_split(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    with pytest.raises(InputError, match="no family table"):
        load_split(tmp_path / "s")
    (tmp_path / "s" / "families.tsv").write_text("family\tsplit\nRF00001\tholdout\n")
    with pytest.raises(InputError, match="unknown split 'holdout'"):
        load_split(tmp_path / "s")


@pytest.mark.slow
def test_reads_the_training_pipelines_prepared_split(tmp_path: Path) -> None:
    from evaluation_helpers import RFAM
    from rinalmo_search.training.prepare import PrepareOptions, prepare_dataset
    from rinalmo_search.training.prepare import load_split as load_prepared

    if not (RFAM / "families.tsv").exists():
        pytest.skip(f"shared Rfam data not found at {RFAM} (needed for data prepare)")
    families = ["RF00002", "RF00003", "RF00004", "RF00006", "RF00007", "RF00012", "RF00013",
                "RF00014", "RF00015", "RF00016"]
    options = PrepareOptions(dedup="exact", families=families, seed=3)
    prepare_dataset(RFAM, tmp_path / "prep", options)
    prepared = load_prepared(tmp_path / "prep")
    split = load_split(tmp_path / "prep")
    assert len(split.records) == sum(len(v) for v in prepared.records.values())
    names = {"train": "train", "validation": "valid", "test": "test"}
    assert split.family_split == {f: names[s] for f, s in prepared.family_split.items()}
    for record in split.records:
        assert record.clan == prepared.families[record.family].clan
    assert prepared.fingerprint[:12] in split.source
