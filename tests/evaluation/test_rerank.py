"""Stage 2: Smith-Waterman re-ranking of a shortlist."""

from __future__ import annotations

import numpy as np
import pytest

from rinalmo_search.errors import ConfigError, InputError
from rinalmo_search.hits import Hit
from rinalmo_search.rerank import (
    GAP_OPEN,
    MATCH,
    MISMATCH,
    RERANK_METHODS,
    alignment_significance,
    rerank,
    sw_scores,
)
from rinalmo_search.seqio import SequenceRecord
from rinalmo_search.simulate import mutate


def test_sw_scores_by_hand() -> None:
    # identical 20-mer: 20 matches
    query = "ACGUACGUACGUACGUACGU"
    mismatch = query[:10] + ("A" if query[10] != "A" else "C") + query[11:]
    scores = sw_scores(query, [query, "GGGGGGGGGG", query[:10] + "A" + query[10:], mismatch])
    assert scores[0] == 20 * MATCH
    assert scores[1] == MATCH  # the query has no GG: one G/G match at best
    # one inserted base: a one-position gap, or one half alone
    assert scores[2] == max(20 * MATCH - GAP_OPEN, 10 * MATCH)
    # one mismatch in the middle: 19 matches and a mismatch, or one half alone
    assert scores[3] == max(19 * MATCH + MISMATCH, 10 * MATCH)
    # significance grows with the raw score and falls with the query length
    sig = alignment_significance(np.array([10.0, 40.0]), 100)
    assert sig[1] > sig[0]
    assert alignment_significance(np.array([40.0]), 1000)[0] < sig[1]


def _hits(sequences: list[str], scores: list[float]) -> list[Hit]:
    return [Hit(target_id=f"t{i}", score=s, sequence=q, embedding_score=s)
            for i, (q, s) in enumerate(zip(sequences, scores, strict=True))]


def test_rerank_puts_the_homolog_first() -> None:
    rng = np.random.default_rng(3)
    query = "".join(rng.choice(list("ACGU"), size=120))
    decoys = ["".join(rng.choice(list("ACGU"), size=120)) for _ in range(5)]
    homolog = mutate(query, rng, rate=0.2)
    hits = _hits([*decoys, homolog], [0.9, 0.85, 0.8, 0.75, 0.7, 0.5])  # homolog last by cosine
    (ranked,) = rerank([SequenceRecord("q", query)], [hits], method="sw")
    assert ranked[0].target_id == "t5"
    assert ranked[0].embedding_score == 0.5  # stage-1 score kept
    assert all(h.alignment_score is not None for h in ranked)
    assert all(0.0 <= h.score <= 1.0 for h in ranked)
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)


def test_rerank_none_keeps_order_and_threads_agree() -> None:
    rng = np.random.default_rng(4)
    queries = [SequenceRecord(f"q{i}", "".join(rng.choice(list("ACGU"), size=80)))
               for i in range(4)]
    lists = [_hits([mutate(q.sequence, rng, rate=0.3) for _ in range(6)],
                   [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]) for q in queries]
    kept = rerank(queries, [list(h) for h in lists], method="none")
    assert [[h.target_id for h in hs] for hs in kept] == [[f"t{i}" for i in range(6)]] * 4
    one = rerank(queries, [[Hit(**vars(h)) for h in hs] for hs in lists], method="sw")
    two = rerank(queries, [[Hit(**vars(h)) for h in hs] for hs in lists], method="sw", threads=2)
    assert [[h.target_id for h in hs] for hs in one] == [[h.target_id for h in hs] for hs in two]
    assert "none" in RERANK_METHODS


def test_rerank_errors_name_the_value() -> None:
    query = SequenceRecord("q", "ACGUACGU")
    with pytest.raises(ConfigError, match="Invalid re-ranking method: 'blast'"):
        rerank([query], [[]], method="blast")
    with pytest.raises(InputError, match="2 queries, 1 lists"):
        rerank([query, query], [[]], method="sw")
    with pytest.raises(InputError, match="lack their sequence"):
        rerank([query], [[Hit(target_id="t", score=0.5)]], method="sw")
    with pytest.raises(ConfigError, match="Invalid 'threads' value: 0"):
        rerank([query], [[]], method="sw", threads=0)
