"""The stage-2 Smith–Waterman kernel against a plain dynamic-programming reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rinalmo_search.rerank import GAP_EXTEND, GAP_OPEN, MATCH, MISMATCH, sw_scores


def reference_sw(query: str, target: str) -> int:
    """Gotoh local alignment: a gap of n positions costs GAP_OPEN + (n - 1) * GAP_EXTEND."""
    rows, cols = len(query) + 1, len(target) + 1
    best = 0
    h = [[0] * cols for _ in range(rows)]
    e = [[-(10**9)] * cols for _ in range(rows)]  # gap in the query (moving along the target)
    f = [[-(10**9)] * cols for _ in range(rows)]  # gap in the target
    for i in range(1, rows):
        for j in range(1, cols):
            e[i][j] = max(h[i][j - 1] - GAP_OPEN, e[i][j - 1] - GAP_EXTEND)
            f[i][j] = max(h[i - 1][j] - GAP_OPEN, f[i - 1][j] - GAP_EXTEND)
            pair = MATCH if query[i - 1] == target[j - 1] else MISMATCH
            h[i][j] = max(0, h[i - 1][j - 1] + pair, e[i][j], f[i][j])
            best = max(best, h[i][j])
    return best


def _mutated(sequence: str, rng: random.Random) -> str:
    out = []
    for base in sequence:
        roll = rng.random()
        if roll < 0.1:
            out.append(rng.choice("ACGU"))
        elif roll < 0.15:
            continue
        elif roll < 0.2:
            out.append(base + rng.choice("ACGU") * rng.randint(1, 4))
        else:
            out.append(base)
    return "".join(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_equal_the_reference_dynamic_programme(seed: int) -> None:
    rng = random.Random(seed)
    query = "".join(rng.choice("ACGU") for _ in range(60))
    targets = [_mutated(query, rng) for _ in range(12)]
    targets += ["".join(rng.choice("ACGU") for _ in range(rng.randint(1, 90))) for _ in range(8)]
    expected = np.array([reference_sw(query, t) for t in targets], dtype=np.float64)
    np.testing.assert_array_equal(sw_scores(query, targets), expected)


def test_ambiguity_codes_and_lowercase_are_read_as_the_package_reads_them() -> None:
    # T is U; every IUPAC ambiguity code becomes N (which scores as a fifth letter)
    assert sw_scores("acgtacgt", ["ACGUACGU"])[0] == 8
    assert sw_scores("ACGUNNACGU", ["ACGURYACGU"])[0] == 10
    assert sw_scores("ACGUAAACGU", ["ACGURYACGU"])[0] == reference_sw("ACGUAAACGU", "ACGUNNACGU")


def test_no_targets_gives_no_scores() -> None:
    assert sw_scores("ACGU", []).shape == (0,)
