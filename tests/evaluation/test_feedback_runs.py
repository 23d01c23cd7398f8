"""evaluate's feedback settings: one run per setting, each with its shortlist recall."""

from __future__ import annotations

import pytest
from evaluation_helpers import synthetic_records

from rinalmo_search.evaluation.protocol import ToolRun
from rinalmo_search.evaluation.runner import evaluate, shortlist_recall
from rinalmo_search.evaluation.split import RetrievalSet
from rinalmo_search.feedback import Feedback


def _split() -> RetrievalSet:
    records = synthetic_records()
    sides = ("test", "validation", "train", "train")
    return RetrievalSet(records, {r.family: sides[int(r.family[2:]) % 4] for r in records})


def test_shortlist_recall_counts_the_members_a_run_returns() -> None:
    split = _split()
    queries = split.queries("test")
    mates = {q.id: [r.id for r in split.records if r.family == q.family and r.id != q.id]
             for q in queries}
    # every query returns itself and the first half (rounded down) of its mates
    hits = {q.id: [(q.id, 1.0)] + [(m, 0.5) for m in mates[q.id][: len(mates[q.id]) // 2]]
            for q in queries}
    recall = shortlist_recall(ToolRun("half", hits, {}, len(queries), 1), queries, split)
    per_family: dict[str, float] = {}
    for q in queries:
        per_family[q.family] = (len(mates[q.id]) // 2) / len(mates[q.id])
    assert recall["all"] == pytest.approx(sum(per_family.values()) / len(per_family), abs=1e-4)
    assert recall["all"] < 0.5
    assert set(recall) == {"all", "<20", "20-99", ">=100"}


@pytest.mark.parametrize(
    ("feedbacks", "names"),
    [
        ([None, Feedback(0.9, 20, 2, 10)], ["kmer+sw", "kmer+sw+prf(0.9:20:2:10:20)", "kmer"]),
        ([Feedback()], ["kmer+sw+prf", "kmer"]),  # 'none' still runs, without feedback
    ],
)
def test_each_feedback_setting_is_a_run_and_none_runs_once(
    feedbacks: list[Feedback | None], names: list[str]
) -> None:
    report = evaluate(_split(), models=["kmer"], reranks=["sw", "none"], peers=[], top_k=20,
                      feedbacks=feedbacks, max_validation_queries_per_family=2)
    tools = report["tools"]
    assert [t["name"] for t in tools] == names
    for tool in tools:
        assert 0.0 < tool["details"]["shortlist_recall"]["all"] <= 1.0
