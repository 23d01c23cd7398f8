"""The retrieval view of a prepared split (the one split format), and query selection."""

from __future__ import annotations

from pathlib import Path

import pytest
from rinalmo_search.training.prepare import load_split

from rinalmo_search.errors import InputError
from rinalmo_search.evaluation.split import RetrievalSet, load_retrieval_set


def test_reads_the_training_pipelines_prepared_split(prepared_subset: Path) -> None:
    prepared = load_split(prepared_subset)
    split = load_retrieval_set(prepared_subset)
    assert [r.id for r in split.records] == [
        r.id for side in ("train", "validation", "test") for r in prepared.records[side]]
    assert split.family_split == prepared.family_split
    assert set(split.family_split.values()) == {"train", "validation", "test"}
    for record in split.records:
        assert record.clan == prepared.families[record.family].clan
    assert split.fingerprint == prepared.fingerprint
    assert prepared.fingerprint[:12] in split.source
    sizes = split.family_sizes()
    expected = [r.id for r in split.records
                if split.family_split[r.family] == "test" and sizes[r.family] >= 4]
    assert [q.id for q in split.queries("test")] == expected
    sample = split.queries("test", max_per_family=2)
    assert len(sample) == 2 * len({q.family for q in split.queries("test")})
    assert {q.id for q in sample} <= set(expected)


def test_queries_sample_whole_sides_deterministically() -> None:
    from rinalmo_search.seqio import SequenceRecord

    records = [SequenceRecord(id=f"{f}_{i}", sequence="ACGU" * 5, family=f)
               for f, n in (("RF1", 6), ("RF2", 3), ("RF3", 5)) for i in range(n)]
    split = RetrievalSet(records, {"RF1": "test", "RF2": "test", "RF3": "validation"})
    assert {q.family for q in split.queries("test")} == {"RF1"}  # RF2 has < 4 members
    assert split.queries("test", max_per_family=3, seed=4) == split.queries(
        "test", max_per_family=3, seed=4)
    assert len(split.queries("validation", max_per_family=3)) == 3


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="split folder not found"):
        load_retrieval_set(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "families.tsv").write_text("family\tsplit\nRF00001\ttest\n")
    with pytest.raises(InputError, match="not a split folder .*data prepare"):
        load_retrieval_set(tmp_path / "s")
