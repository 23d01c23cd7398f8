"""Quality metrics on hand-made alignments whose scores are worked out by hand."""

from __future__ import annotations

import math
import random

import pytest
from msa_simulate import simulate_family

from rinalmo_search.errors import InputError
from rinalmo_search.evaluation.msa_metrics import (
    base_pair_f1,
    base_pairs,
    column_score,
    pair_f1,
    sci,
    score_alignment,
    subset,
    sum_of_pairs_score,
)
from rinalmo_search.msa.stockholm import Stockholm


def aln(rows: dict[str, str], ss: str | None = None) -> Stockholm:
    return Stockholm(names=list(rows), rows=list(rows.values()),
                     gc={"SS_cons": ss} if ss is not None else {})


REFERENCE = aln({"a": "ACGU", "b": "ACGU", "c": "AC-U"})


def test_identical_alignment_scores_one():
    scores = score_alignment(REFERENCE, REFERENCE)
    assert scores.sps == 1.0 and scores.column_score == 1.0
    assert scores.n_shared == 3 and scores.reference_pairs == 10


def test_sps_and_column_score_known_answer():
    # reference pairs: col0 3, col1 3, col2 1 (a-b), col3 3 = 10
    # test keeps col0 and col1 (6 pairs); G of b and U of c are shifted -> 6/10
    test = aln({"a": "ACGU-", "b": "AC-GU", "c": "ACU--"})
    assert sum_of_pairs_score(test, REFERENCE) == pytest.approx(0.6)
    assert column_score(test, REFERENCE) == pytest.approx(2 / 4)


def test_case_and_gap_characters_do_not_matter():
    test = aln({"a": "acgu.", "b": "ACGU~", "c": "Ac.U."})
    assert sum_of_pairs_score(test, REFERENCE) == 1.0


def test_column_with_an_extra_residue_is_not_exact():
    reference = aln({"a": "AC", "b": "A-", "c": "-A"})
    test = aln({"a": "AC", "b": "A-", "c": "A-"})
    scores = score_alignment(test, reference)
    assert scores.sps == pytest.approx(0.5)  # (a0,b0) kept, (a1,c0) lost
    assert scores.column_score == 0.0  # test column 0 holds c's residue as well


def test_only_shared_sequences_count():
    test = aln({"x": "GGGG", "c": "AC-U", "a": "ACGU"})
    scores = score_alignment(test, REFERENCE)
    assert scores.n_shared == 2 and scores.reference_pairs == 3
    assert scores.sps == 1.0


def test_different_residues_are_refused():
    test = aln({"a": "ACGG", "b": "ACGU"})
    with pytest.raises(InputError, match="sequence 'a' differs"):
        sum_of_pairs_score(test, REFERENCE)


def test_no_aligned_pair_gives_nan():
    reference = aln({"a": "A-", "b": "-A"})
    assert math.isnan(sum_of_pairs_score(reference, reference))


def test_base_pairs_of_dot_bracket_and_wuss():
    assert base_pairs("((..))") == {(0, 5), (1, 4)}
    assert base_pairs("<<__AA>>aa") == {(1, 6), (0, 7), (5, 8), (4, 9)}
    assert base_pairs(":::,,,") == set()
    with pytest.raises(InputError, match=r"'\)' at column 3 closes nothing"):
        base_pairs("..)")
    with pytest.raises(InputError, match="'<' at column 1 is not closed"):
        base_pairs("<..")


def test_pair_f1_known_answer():
    assert pair_f1({(0, 5), (1, 4)}, {(0, 5), (1, 4), (2, 3)}) == pytest.approx(0.8)
    assert pair_f1(set(), set()) == 1.0
    assert pair_f1({(0, 1)}, set()) == 0.0


def test_base_pair_f1_across_column_spaces():
    reference = aln({"a": "GGGAAACCC", "b": "GGGAAACCC"}, "(((...)))")
    same = aln({"a": "-GGGAAACCC", "b": "-GGGAAACCC"}, ".(((...)))")
    assert base_pair_f1(same, reference) == 1.0
    # two of three pairs predicted, in both sequences: 2*4 / (4 + 6)
    fewer = aln({"a": "-GGGAAACCC", "b": "-GGGAAACCC"}, ".((.....))")
    assert base_pair_f1(fewer, reference) == pytest.approx(0.8)


def test_base_pair_f1_ignores_pairs_a_sequence_cannot_form():
    # b lacks the residue of column 0: the reference's pair (0,8) does not exist for b
    reference = aln({"a": "GGGAAACCC", "b": "-GGAAACCC"}, "(((...)))")
    test = aln({"a": "GGGAAACCC", "b": "-GGAAACCC"}, ".((...)).")
    # a: test pairs (1,7),(2,6) of reference (0,8),(1,7),(2,6): TP 2, pred 2, ref 3
    # b: residues 0..7; test pairs (0,6),(1,5); reference (0,6),(1,5): TP 2, pred 2, ref 2
    assert base_pair_f1(test, reference) == pytest.approx(2 * 4 / (4 + 5))


def test_base_pair_f1_needs_ss_cons():
    with pytest.raises(InputError, match="the test alignment has no #=GC SS_cons"):
        base_pair_f1(aln({"a": "ACGU"}), aln({"a": "ACGU"}, "...."))


def test_sci_known_answers():
    family = simulate_family(seed=7, n=8)
    single = family.reference_rows[0]
    assert sci([single]) == pytest.approx(1.0)  # alifold of one row is its own MFE
    assert sci([single] * 4) == pytest.approx(1.0)  # identical rows: nothing to lose or gain
    assert sci(family.reference_rows) > 0.8  # a family sharing three stems
    rng = random.Random(0)
    unrelated = ["".join(rng.choice("ACGU") for _ in range(60)) for _ in range(5)]
    assert sci(unrelated) < 0.3  # no common structure


def test_subset_keeps_order_of_the_alignment():
    part = subset(REFERENCE, ["c", "a"])
    assert part.names == ["a", "c"] and part.rows == ["ACGU", "AC-U"]


def test_core_sps_counts_only_reference_consensus_columns():
    # column 2 is an insert column of the reference (RF '.'): a-b share it there by accident
    reference = Stockholm(names=["a", "b", "c"], rows=["ACGU", "ACGU", "AC-U"],
                          gc={"RF": "xx.x"})
    test = aln({"a": "ACG-U", "b": "AC-GU", "c": "AC--U"})
    # all columns: 10 pairs, the a-b pair of column 2 lost -> 9/10; core: 9 pairs, all kept
    assert score_alignment(test, reference).sps == pytest.approx(0.9)
    core = score_alignment(test, reference, match_only=True)
    assert core.sps == 1.0 and core.reference_pairs == 9
    assert core.column_score == 1.0
    shifted = aln({"a": "ACGU-", "b": "AC-GU", "c": "ACU--"})
    # core: columns 0, 1 kept (6 pairs), column 3 lost (3 pairs) -> 6/9
    assert score_alignment(shifted, reference, match_only=True).sps == pytest.approx(6 / 9)
    with pytest.raises(InputError, match="no #=GC RF line"):
        score_alignment(test, REFERENCE, match_only=True)
