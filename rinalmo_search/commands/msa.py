"""``rinalmo-search msa``: unaligned FASTA → structure-aware Stockholm MSA."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..msa import build_msa
from ..msa.mafft import ALIGNERS
from ..msa.pipeline import DEFAULT_ROUNDS

log = logging.getLogger(__name__)

NAME = "msa"
EXAMPLES = """\
examples:
  # align the query and its hits from 'rinalmo-search search'
  rinalmo-search msa hits/QUERY/retrieved_homologs.fasta --out final_msa.sto

  # four threads, keep the draft, model and cmalign output for inspection
  rinalmo-search msa homologs.fasta --out msa.sto --threads 4 --keep-work

  # insist on X-INS-i (fails if this MAFFT lacks its extensions)
  rinalmo-search msa homologs.fasta --out msa.sto --aligner xinsi

  # hits that may be fragments (cut inside the RNA): cmalign's truncated alignment
  rinalmo-search msa homologs.fasta --out msa.sto --fragments

  # full-length homologs (e.g. Rfam-like entries without flanks): G-INS-i draft
  rinalmo-search msa homologs.fasta --out msa.sto --aligner ginsi

steps: MAFFT draft (X-INS-i, or L-INS-i with a warning when this MAFFT lacks MXSCARNA)
  -> RNAalifold consensus structure -> cmbuild -F -> cmalign --notrunc (whole homologs, not
  fragments), repeated up to --rounds -> Stockholm with #=GC SS_cons,
  the first input record (the query) first, and #=GF lines naming every tool, version and option.

refused before any program runs: --out naming the input (also through a link) or a folder; an
  id starting with '#' or '//' (Stockholm would read the line as markup: rename the record); no
  sequence of 2 nt or more. When a round after the first fails (e.g. cmbuild's "Z got insanely
  large" on a very long sequence), the previous round's alignment is written with a warning.
  Ctrl-C or SIGTERM stops every program started and removes the intermediate folder.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``msa`` sub-command."""
    from ..cli import HelpFormatter

    parser = subparsers.add_parser(
        NAME,
        help="align sequences into a structure-aware Stockholm MSA (MAFFT + Infernal)",
        description="Align unaligned RNA sequences (query first) into a Stockholm MSA with a "
        "consensus secondary structure (#=GC SS_cons).",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "fasta", type=Path, metavar="FASTA", help="unaligned sequences, query first"
    )
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="MSA.sto",
                        help="Stockholm file to write ('-': standard output)")
    parser.add_argument("--aligner", choices=ALIGNERS, default="auto",
                        help="MAFFT strategy for the draft; auto = X-INS-i when available, "
                        "else L-INS-i; ginsi (G-INS-i) suits homologs aligned end to end")
    parser.add_argument(
        "--threads", "-t", type=int, default=1, help="threads for MAFFT and cmalign"
    )
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the folder of intermediate files (its path is logged)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="create the intermediate folder here (default: system temp folder)")
    parser.add_argument("--mxsize", type=float, default=None, metavar="MB",
                        help="cmalign --mxsize per thread (default: half the available memory "
                        "shared by the threads, at least 1028)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, metavar="N",
                        help="at most N cmbuild -> cmalign rounds (stops when the alignment "
                        "repeats)")
    parser.add_argument("--fragments", action="store_true",
                        help="the sequences may be fragments cut inside the RNA: let cmalign "
                        "use truncated alignment (default: whole homologs, cmalign --notrunc)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``msa``."""
    result = build_msa(
        args.fasta, args.out, threads=args.threads, aligner=args.aligner,
        keep_work=args.keep_work, work_dir=args.work_dir, mxsize=args.mxsize, rounds=args.rounds,
        fragments=args.fragments,
    )
    log.info(
        "%s: %d sequences aligned (draft: %s)", result.path, result.n_sequences, result.aligner_used
    )
    if result.work_dir is not None:
        log.info("intermediate files: %s", result.work_dir)
    return 0
