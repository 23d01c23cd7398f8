"""Retrieval metrics on small rankings worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rinalmo_search.evaluation.metrics import (
    QueryResult,
    average_precision,
    choose_threshold,
    label_hits,
    macro_average,
    precision_at_k,
    recall_at_r,
    sensitivity_to_first_fp,
    threshold_prf,
)


def test_average_precision_by_hand() -> None:
    # positives at ranks 1, 3 and 4 of 3 positives: (1/1 + 2/3 + 3/4) / 3
    assert average_precision(np.array([1, 0, 1, 1]), 3) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # one of 4 positives never found counts 0: (1/2 + 2/3) / 4
    assert average_precision(np.array([0, 1, 1]), 4) == pytest.approx((1 / 2 + 2 / 3) / 4)
    assert average_precision(np.array([], dtype=np.int8), 2) == 0.0
    assert math.isnan(average_precision(np.array([1]), 0))


def test_recall_at_r_sensitivity_and_p_at_10() -> None:
    relevant = np.array([1, 1, 0, 1, 0, 1])
    assert recall_at_r(relevant, 4) == pytest.approx(3 / 4)  # R = 4: ranks 1..4 hold 3 TPs
    assert recall_at_r(np.ones(150, dtype=np.int8), 300) == 1.0  # R capped at 100
    assert sensitivity_to_first_fp(relevant, 5) == pytest.approx(2 / 5)
    assert sensitivity_to_first_fp(np.array([0, 1, 1]), 2) == 0.0
    assert sensitivity_to_first_fp(np.array([1, 1]), 4) == pytest.approx(0.5)
    assert precision_at_k(relevant, 20) == pytest.approx(4 / 10)
    assert precision_at_k(np.array([1, 0, 1]), 2) == 1.0  # denominator min(10, n_pos)


def test_threshold_precision_recall_f1() -> None:
    relevant = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    precision, recall, f1 = threshold_prf(relevant, scores, 4, 0.5)
    assert (precision, recall) == pytest.approx((2 / 3, 2 / 4))
    assert f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert threshold_prf(relevant, scores, 4, 0.95) == (0.0, 0.0, 0.0)


def test_label_hits_drops_self_and_same_clan() -> None:
    hits = [
        ("q", "RF1", "CL1", 1.0),  # the query itself
        ("a", "RF1", "CL1", 0.9),  # same family: TP
        ("b", "RF2", "CL1", 0.8),  # same clan, other family: ignored
        ("c", "RF3", "", 0.7),  # FP
        ("d", "RF1", "CL1", 0.6),  # TP
    ]
    result = label_hits("q", "RF1", "CL1", hits, n_pos=3)
    assert result.relevant.tolist() == [1, 0, 1]
    assert result.scores.tolist() == [0.9, 0.7, 0.6]
    # an unclanned query family never ignores anything
    unclanned = label_hits("q", "RF1", "", [("b", "RF2", "", 0.8)], n_pos=1)
    assert unclanned.relevant.tolist() == [0]


def _result(family: str, relevant: list[int], n_pos: int) -> QueryResult:
    scores = np.linspace(1, 0, len(relevant))
    return QueryResult(f"{family}-{len(relevant)}", family, np.array(relevant, np.int8),
                       scores, n_pos)


def test_macro_average_weights_families_not_queries() -> None:
    results = [
        _result("small", [1, 1], 2),  # AP 1
        _result("small", [0, 1], 2),  # AP (1/2)/2 = 0.25
        _result("big", [0, 0, 0], 150),  # AP 0
    ]
    summary = macro_average(results, {"small": 3, "big": 151}, threshold=None)
    # family means: small (1 + 0.25) / 2 = 0.625, big 0 → macro 0.3125
    assert summary["all"]["ap"] == pytest.approx(0.3125)
    assert summary["<20"]["ap"] == pytest.approx(0.625)
    assert summary[">=100"]["ap"] == 0.0
    assert summary["20-99"]["families"] == 0 and math.isnan(summary["20-99"]["ap"])
    assert summary["all"]["queries"] == 3
    assert math.isnan(summary["all"]["f1"])


def test_choose_threshold_separates_scores() -> None:
    # TPs score high, FPs low: the best threshold keeps all TPs and no FP
    results = [
        QueryResult("q1", "A", np.array([1, 1, 0, 0], np.int8), np.array([0.9, 0.8, 0.3, 0.2]), 2),
        QueryResult("q2", "B", np.array([1, 0], np.int8), np.array([0.85, 0.25]), 1),
    ]
    threshold = choose_threshold(results)
    assert 0.3 < threshold <= 0.8
    assert choose_threshold([]) == float("-inf")
