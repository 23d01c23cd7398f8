"""Alignment quality: sum-of-pairs and column scores, base-pair F1 of SS_cons, and SCI.

Scores compare a *test* alignment with a *reference* on the sequences both hold (matched by
name; their residues must agree). Definitions follow BAliBASE (Thompson et al. 1999):

- **SPS** (sum-of-pairs score): of the residue pairs the reference puts in one column, the
  fraction the test also puts in one column.
- **Core SPS** (``match_only=True``): the SPS over the reference's consensus columns only
  (``#=GC RF`` not ``.``/``~``), as BAliBASE scores its core blocks. Rfam seed alignments mark
  insertions relative to their consensus with ``RF .``; there residues are left unaligned (set
  flush by cmalign or by hand), so a pair's sharing a column there says nothing about homology.
  Applied to the reference alone, it treats every compared alignment the same.
- **Column score** (TC): of the reference columns holding at least two residues, the fraction
  the test reproduces exactly (the same residues together, nothing else of those sequences).
- **Base-pair F1**: each consensus structure is projected onto every shared sequence (a pair
  counts where that sequence has residues in both columns); pairs are compared as residue
  positions, summed over sequences, F1 = 2TP / (2TP + FP + FN).
- **SCI**: see :func:`rinalmo_search.msa.structure.structure_conservation_index`.

Every character outside ``- . ~ _`` counts as a residue, whatever its case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..msa.stockholm import GAPS, Stockholm
from ..msa.structure import structure_conservation_index

_OPEN = {"(": ")", "<": ">", "[": "]", "{": "}"}
_CLOSE = {close: open_ for open_, close in _OPEN.items()}


@dataclass
class Scores:
    """Scores of a test alignment against a reference.

    Attributes:
        sps: sum-of-pairs score (nan when the reference aligns no pair).
        column_score: total-column score (nan when the reference has no column of 2+ residues).
        n_shared: sequences both alignments hold.
        reference_pairs: residue pairs the reference aligns (the SPS denominator).
    """

    sps: float
    column_score: float
    n_shared: int
    reference_pairs: int


def _residue_columns(row: str) -> list[int]:
    """Column of each residue of ``row``, in order."""
    return [column for column, char in enumerate(row) if char not in GAPS]


def _shared(test: Stockholm, reference: Stockholm) -> list[str]:
    names = [name for name in reference.names if name in set(test.names)]
    for name in names:
        a = "".join(c for c in test.row(name) if c not in GAPS).upper().replace("T", "U")
        b = "".join(c for c in reference.row(name) if c not in GAPS).upper().replace("T", "U")
        if a != b:
            raise InputError(
                f"sequence {name!r} differs between the test and reference alignments "
                f"({len(a)} vs {len(b)} residues); scores need the same residues"
            )
    return names


def score_alignment(
    test: Stockholm, reference: Stockholm, *, match_only: bool = False
) -> Scores:
    """SPS and column score of ``test`` against ``reference`` on their shared sequences.

    Arguments:
        test: the alignment scored.
        reference: the reference alignment.
        match_only: count only the reference's consensus columns (``#=GC RF`` other than
            ``.``/``~``): the core SPS and column score.

    Raises:
        InputError: a shared sequence has different residues in the two alignments, or
            ``match_only`` and the reference has no ``#=GC RF`` line.
    """
    names = _shared(test, reference)
    core = None
    if match_only:
        if "RF" not in reference.gc:
            raise InputError("the reference alignment has no #=GC RF line (needed for core scores)")
        core = {column for column, char in enumerate(reference.gc["RF"]) if char not in ".~"}
    # test column of each (sequence, residue index)
    test_columns = {name: _residue_columns(test.row(name)) for name in names}
    columns: dict[int, list[tuple[int, int]]] = {}  # reference column -> [(seq no, test column)]
    for number, name in enumerate(names):
        for index, column in enumerate(_residue_columns(reference.row(name))):
            columns.setdefault(column, []).append((number, test_columns[name][index]))
    # residues of the shared sequences in each test column, for the exactness of a column
    test_column_sizes = Counter(c for name in names for c in test_columns[name])
    total = correct = 0
    full_columns = exact_columns = 0
    for column, members in columns.items():
        n = len(members)
        if n < 2 or (core is not None and column not in core):
            continue
        total += n * (n - 1) // 2
        groups = Counter(test_column for _, test_column in members)
        correct += sum(k * (k - 1) // 2 for k in groups.values())
        full_columns += 1
        if len(groups) == 1:
            (only,) = groups
            if test_column_sizes[only] == n:
                exact_columns += 1
    return Scores(
        sps=correct / total if total else float("nan"),
        column_score=exact_columns / full_columns if full_columns else float("nan"),
        n_shared=len(names),
        reference_pairs=total,
    )


def sum_of_pairs_score(test: Stockholm, reference: Stockholm) -> float:
    """SPS of ``test`` against ``reference`` (see :func:`score_alignment`)."""
    return score_alignment(test, reference).sps


def column_score(test: Stockholm, reference: Stockholm) -> float:
    """Total-column score of ``test`` against ``reference`` (see :func:`score_alignment`)."""
    return score_alignment(test, reference).column_score


def base_pairs(structure: str) -> set[tuple[int, int]]:
    """Column pairs ``(i, j)``, ``i < j``, of a dot-bracket or WUSS string.

    Brackets ``() <> [] {}`` nest per kind; WUSS pseudoknot letters pair upper case (open)
    with lower case (close).

    Raises:
        InputError: an unbalanced bracket or letter.
    """
    stacks: dict[str, list[int]] = {}
    pairs: set[tuple[int, int]] = set()
    for position, char in enumerate(structure):
        if char in _OPEN or (char.isalpha() and char.isupper()):
            stacks.setdefault(char, []).append(position)
        elif char in _CLOSE or (char.isalpha() and char.islower()):
            opener = _CLOSE.get(char, char.upper())
            stack = stacks.get(opener)
            if not stack:
                raise InputError(
                    f"unbalanced structure: {char!r} at column {position + 1} closes nothing"
                )
            pairs.add((stack.pop(), position))
    left = [(k, v[-1]) for k, v in stacks.items() if v]
    if left:
        char, position = left[0]
        raise InputError(f"unbalanced structure: {char!r} at column {position + 1} is not closed")
    return pairs


def pair_f1(predicted: set, reference: set) -> float:
    """F1 of two sets of pairs (1.0 when both are empty)."""
    if not predicted and not reference:
        return 1.0
    true_positives = len(predicted & reference)
    return 2 * true_positives / (len(predicted) + len(reference))


def _sequence_pairs(alignment: Stockholm, name: str) -> set[tuple[int, int]]:
    row = alignment.row(name)
    residue_index = {column: index for index, column in enumerate(_residue_columns(row))}
    return {
        (residue_index[i], residue_index[j])
        for i, j in base_pairs(alignment.gc["SS_cons"])
        if i in residue_index and j in residue_index
    }


def base_pair_f1(test: Stockholm, reference: Stockholm) -> float:
    """Base-pair F1 of the test's ``SS_cons`` against the reference's, over shared sequences.

    Raises:
        InputError: either alignment lacks ``#=GC SS_cons``, or residues differ.
    """
    for label, alignment in (("test", test), ("reference", reference)):
        if "SS_cons" not in alignment.gc:
            raise InputError(f"the {label} alignment has no #=GC SS_cons line")
    names = _shared(test, reference)
    true_positives = predicted_total = reference_total = 0
    for name in names:
        predicted = _sequence_pairs(test, name)
        expected = _sequence_pairs(reference, name)
        true_positives += len(predicted & expected)
        predicted_total += len(predicted)
        reference_total += len(expected)
    if predicted_total + reference_total == 0:
        return 1.0
    return 2 * true_positives / (predicted_total + reference_total)


def sci(alignment: Stockholm | Sequence[str]) -> float:
    """Structure conservation index of an alignment (RNAalifold energy / mean single MFE)."""
    rows = alignment.rows if isinstance(alignment, Stockholm) else list(alignment)
    return structure_conservation_index(rows)


def subset(alignment: Stockholm, names: Sequence[str]) -> Stockholm:
    """The rows of ``names`` only (columns kept, annotations of those rows kept)."""
    keep = [name for name in alignment.names if name in set(names)]
    return Stockholm(
        names=keep,
        rows=[alignment.row(name) for name in keep],
        gf=list(alignment.gf),
        gc=dict(alignment.gc),
        gr={name: alignment.gr[name] for name in keep if name in alignment.gr},
    )
