"""The adaptive shortlist: a query asks for the deep shortlist only while homologs keep coming."""

from __future__ import annotations

import random

import numpy as np
from rinalmo_search.embedder.compact import load_compact

from rinalmo_search.hits import Hit
from rinalmo_search.rerank import RerankCalibration, rerank, two_stage
from rinalmo_search.seqio import SequenceRecord


def _random_rna(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ACGU") for _ in range(length))


def _point_mutant(sequence: str, rng: random.Random) -> str:
    return "".join(rng.choice("ACGU") if rng.random() < 0.05 else base for base in sequence)


def test_only_a_query_whose_shortlist_ends_in_homologs_gets_the_deep_shortlist() -> None:
    rng = random.Random(7)
    big_family, small_family = _random_rna(rng, 120), _random_rna(rng, 120)
    queries = [SequenceRecord("big", big_family), SequenceRecord("small", small_family)]
    unrelated = [_random_rna(rng, 120) for _ in range(1000)]
    # stage-1 order per query: the big family fills the first 400 ranks, the small one 5
    ranked = {
        0: [_point_mutant(big_family, rng) for _ in range(400)] + unrelated[:600],
        1: [_point_mutant(small_family, rng) for _ in range(5)] + unrelated[:995],
    }
    asked: list[tuple[tuple[int, ...], int]] = []

    def fetch(vectors: np.ndarray, k: int) -> list[list[Hit]]:
        rows = [int(v[0]) for v in vectors]
        asked.append((tuple(rows), k))
        return [
            [Hit(f"{row}-{i}", 1.0 - i / 2000, sequence=s) for i, s in enumerate(ranked[row][:k])]
            for row in rows
        ]

    vectors = np.array([[0.0], [1.0]])
    hits = two_stage(queries, vectors, fetch, top_k=100, candidates=1000, first_candidates=200)
    assert asked == [((0, 1), 200), ((0,), 1000)]
    assert [len(h) for h in hits] == [100, 100]
    assert all(int(h.target_id[2:]) < 400 for h in hits[0])  # homologs, best first
    assert {h.target_id for h in hits[1][:5]} == {f"1-{i}" for i in range(5)}


def test_without_re_ranking_stage_1_fetches_top_k_only() -> None:
    asked: list[int] = []

    def fetch(vectors: np.ndarray, k: int) -> list[list[Hit]]:
        asked.append(k)
        return [[Hit("t", 0.9, sequence="ACGU")] for _ in vectors]

    two_stage([SequenceRecord("q", "ACGU")], np.zeros((1, 1)), fetch, top_k=7, method="none")
    assert asked == [7]


def test_a_models_recorded_calibration_is_what_stage_2_uses() -> None:
    model = load_compact()
    assert RerankCalibration.for_model(model) == RerankCalibration()  # shipped: the defaults
    model.metadata = {"rerank": {"lambda": 0.955, "log_k": -2.72, "merge": [0.0, 0.0, 3.0]}}
    calibration = RerankCalibration.for_model(model)
    hits = [Hit("a", 0.9, sequence="ACGUACGUAC"), Hit("b", 0.1, sequence="GGGGGGGG")]
    ranked = rerank([SequenceRecord("q", "ACGUACGUAC")], [hits], calibration=calibration)
    assert [h.score for h in ranked[0]] == [1 / (1 + np.exp(-3.0))] * 2
