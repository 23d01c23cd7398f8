"""Consensus secondary structure of an alignment with RNAalifold (ViennaRNA's Python package)."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence

from ..errors import InputError
from ..tools import run_tool, viennarna_version

log = logging.getLogger(__name__)


def _alignment_rows(rows: Sequence[str]) -> list[str]:
    if not rows:
        raise InputError("cannot fold an empty alignment (expected at least one row)")
    width = len(rows[0])
    for index, row in enumerate(rows):
        if len(row) != width:
            raise InputError(
                f"alignment row {index} has {len(row)} columns, expected {width} "
                "(rows of an alignment must be equally long)"
            )
    # ViennaRNA reads '-' as a gap and upper-case ACGU; Stockholm's '.' and '~' are gaps too.
    return [row.upper().replace(".", "-").replace("~", "-").replace("T", "U") for row in rows]


#: RNAalifold option our consensus structure uses: RIBOSUM covariance scoring (RNAalifold -r).
#: On 16 Rfam families (up to 30 seed members each, L-INS-i drafts, cmbuild + cmalign) the SPS
#: against the seed alignments went from 0.909 (default scoring) to 0.911.
ALIFOLD_OPTIONS = "-r (RIBOSUM scoring)"


#: The child process of :func:`consensus_structure`: aligned rows on stdin, ``structure energy``
#: on stdout. It imports ViennaRNA only (starting it costs ~0.1 s).
_FOLD_PROGRAM = """\
import sys
import RNA
details = RNA.md()
if "--ribosum" in sys.argv[1:]:
    details.ribo = 1
structure, energy = RNA.fold_compound(sys.stdin.read().split(), details, RNA.OPTION_MFE).mfe()
print(structure, repr(float(energy)))
"""


def consensus_structure(rows: Sequence[str], *, ribosum: bool = True) -> tuple[str, float]:
    """RNAalifold consensus MFE structure of aligned rows.

    The fold runs in a child Python process through :func:`~rinalmo_search.tools.run_tool`:
    ViennaRNA holds the interpreter for the whole fold (minutes on a 5,000-column alignment),
    so in this process Ctrl-C and SIGTERM would wait for it; a child is simply stopped.

    Arguments:
        rows: aligned sequences of equal length, gaps as ``-`` (``.`` and ``~`` accepted).
        ribosum: RIBOSUM covariance scoring (``RNAalifold -r``) instead of the default.

    Returns:
        ``(dot_bracket, energy)``: the structure, one character per column, and its
        consensus free energy (kcal/mol, covariance term included).

    Raises:
        InputError: no rows or rows of unequal length.
        ToolError: the child process failed.
    """
    aligned = _alignment_rows(rows)
    log.debug("RNAalifold (ViennaRNA %s) on %d rows", viennarna_version(), len(aligned))
    argv = [sys.executable, "-c", _FOLD_PROGRAM, *(["--ribosum"] if ribosum else [])]
    done = run_tool(argv, input_text="\n".join(aligned) + "\n")
    structure, energy = done.stdout.split()
    return structure, float(energy)


def structure_conservation_index(rows: Sequence[str]) -> float:
    """Structure conservation index (Washietl et al. 2005) of an alignment.

    SCI = E_alifold / mean(E_single), where E_alifold is RNAalifold's consensus energy and
    E_single the MFE of each ungapped sequence. About 1 for a well-conserved structure, near
    0 for none.

    Returns:
        The SCI; ``nan`` when the sequences fold to no structure at all (mean MFE 0).

    Raises:
        InputError: as :func:`consensus_structure`.
    """
    import RNA

    aligned = _alignment_rows(rows)
    _, consensus_energy = RNA.alifold(aligned)
    singles = []
    for row in aligned:
        ungapped = row.replace("-", "")
        singles.append(RNA.fold(ungapped)[1] if ungapped else 0.0)
    mean_single = sum(singles) / len(singles)
    if mean_single == 0:
        return math.nan
    return float(consensus_energy) / mean_single
