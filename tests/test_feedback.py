"""Pseudo-relevance feedback: confident hits' own vectors bring in members the query's misses."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rinalmo_search.errors import ConfigError
from rinalmo_search.evaluation.protocol import exact_search
from rinalmo_search.feedback import Feedback
from rinalmo_search.rerank import two_stage
from rinalmo_search.seqio import SequenceRecord


def _random_rna(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ACGU") for _ in range(length))


def _mutant(sequence: str, rng: random.Random, rate: float) -> str:
    return "".join(rng.choice("ACGU") if rng.random() < rate else base for base in sequence)


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _world(seed: int = 3):
    """A query, 5 'near' members (close vectors), 5 'far' members (vectors closer to the near
    members than to the query, below 40 unrelated sequences), in a 4-d toy embedding."""
    rng = random.Random(seed)
    query = SequenceRecord("q", _random_rna(rng, 150), family="A")
    records, vectors = [], []
    for i in range(5):
        records.append(SequenceRecord(f"near{i}", _mutant(query.sequence, rng, 0.05), "A"))
        vectors.append(_unit(1, 1, 0, 0))
    for i in range(5):
        records.append(SequenceRecord(f"far{i}", _mutant(query.sequence, rng, 0.10), "A"))
        vectors.append(_unit(0.3, 1, 0, 0))
    for i in range(40):
        angle = rng.uniform(0, 2 * np.pi)
        records.append(SequenceRecord(f"other{i}", _random_rna(rng, 150), "B"))
        vectors.append(_unit(1, 0, 1.2 * np.cos(angle), 1.2 * np.sin(angle)))
    table = np.stack(vectors)
    by_sequence = {r.sequence: v for r, v in zip(records, table, strict=True)}
    fetched: list[tuple[int, int]] = []

    def fetch(rows: np.ndarray, k: int):
        fetched.append((len(rows), k))
        return exact_search(rows, table, records, top_k=k)

    embedded: list[int] = []

    def embed(sequences: list[str]) -> np.ndarray:
        embedded.append(len(sequences))
        return np.stack([by_sequence[s] for s in sequences])

    return query, _unit(1, 0, 0, 0)[None, :], fetch, embed, fetched, embedded


def test_feedback_brings_in_members_the_query_vector_misses() -> None:
    query, vectors, fetch, embed, fetched, embedded = _world()
    plain = two_stage([query], vectors, fetch, top_k=20, candidates=20)[0]
    assert not any(h.target_id.startswith("far") for h in plain)  # below 15 unrelated ones

    fetched.clear()
    widened = two_stage([query], vectors, fetch, top_k=20, candidates=20, embed=embed,
                        feedback=Feedback(threshold=0.9, depth=20, seeds=2, seed_depth=10))[0]
    assert embedded == [5]  # the five near members, each confidently homologous
    assert fetched == [(1, 20), (1, 20), (2, 10)]  # shortlist, query+mean, two seeds
    assert {h.target_id for h in widened[:10]} == {f"near{i}" for i in range(5)} | {
        f"far{i}" for i in range(5)}
    assert len({h.target_id for h in widened}) == len(widened) == 20
    assert [h.score for h in widened] == sorted((h.score for h in widened), reverse=True)
    assert all(h.embedding_score is not None and h.alignment_score is not None for h in widened)


def test_a_query_without_confident_hits_is_left_alone() -> None:
    query, vectors, fetch, embed, fetched, embedded = _world()
    unrelated = SequenceRecord("u", _random_rna(random.Random(9), 150))
    plain = two_stage([unrelated], vectors, fetch, top_k=20, candidates=20)[0]
    widened = two_stage([unrelated], vectors, fetch, top_k=20, candidates=20, embed=embed,
                        feedback=Feedback())[0]
    assert embedded == []
    assert [h.target_id for h in widened] == [h.target_id for h in plain]


def test_feedback_needs_the_model_and_parses_its_settings() -> None:
    query, vectors, fetch, *_ = _world()
    with pytest.raises(ConfigError, match="embedding model"):
        two_stage([query], vectors, fetch, top_k=5, feedback=Feedback())
    assert Feedback.parse("off") is None
    assert Feedback.parse("on") == Feedback()
    assert Feedback.parse("0.8:500:3:100") == Feedback(0.8, 500, 3, 100)
    assert Feedback.parse("0.8:500:3:100:20") == Feedback(0.8, 500, 3, 100, 20)
    assert Feedback.parse("0.8:500:3:100:20").label() == "0.8:500:3:100:20"
    for bad in ("0.8:500", "0.8:1:2:3:4:5", "x:1:2:3", "1.5:1:2:3", "0.5:-1:2:3"):
        with pytest.raises(ConfigError, match="feedback"):
            Feedback.parse(bad)


def test_search_records_widens_with_the_searching_model() -> None:
    from rinalmo_search.pipeline import search_records

    query, vectors, fetch, embed, fetched, embedded = _world()

    class Store:
        def check_model(self, info: object) -> None:
            pass

        def search(self, rows: np.ndarray, *, top_k: int, filter: str, fields: object,
                   copies: bool = True):
            return fetch(rows, top_k)

        def add_copies(self, results: list, *, top_k: int, filter: str) -> list:
            return [hits[:top_k] for hits in results]

    class Model:
        info = None

        def embed(self, sequences: list[str]) -> np.ndarray:
            return vectors if sequences == [query.sequence] else embed(sequences)

    found = search_records([query], Store(), Model(), top_k=10, rerank="sw",  # type: ignore[arg-type]
                           candidates=20, feedback=Feedback(0.9, 20, 2, 10))[0]
    assert embedded == [5]
    assert sum(h.target_id.startswith("far") for h in found) == 5


def test_search_refuses_a_bad_feedback_setting_before_any_work(tmp_path, capsys) -> None:
    from rinalmo_search.cli import main

    (tmp_path / "q.fa").write_text(">q\nACGUACGUACGU\n")
    out = tmp_path / "h.tsv"
    code = main(["search", str(tmp_path / "q.fa"), "--db", str(tmp_path / "missing.db"),
                 "--out", str(out), "--feedback", "0.9:500"])
    assert code == 1
    assert "Invalid feedback '0.9:500'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "missing.db").exists()
