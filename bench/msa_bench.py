"""Time per structure-aware MSA for 10, 50 and 100 real Rfam seed sequences of ~100 and ~300 nt.

For each size, seed members of one family are sampled (reproducibly), the first is the query,
and the whole pipeline runs (MAFFT draft → RNAalifold → cmbuild/cmalign rounds); the MAFFT stage
alone is the peer it is compared with, measured in the same run. The SPS of both alignments
against the family's Rfam seed alignment is printed beside the times.

Example::

    python bench/msa_bench.py --rfam ../shared/data/rfam --threads 2
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path

from rinalmo_search.evaluation.msa_metrics import sum_of_pairs_score
from rinalmo_search.msa.pipeline import DEFAULT_ROUNDS, align_records
from rinalmo_search.msa.stockholm import read_stockholm
from rinalmo_search.seqio import iter_fasta

log = logging.getLogger("msa_bench")

#: ~100 nt: SAM riboswitch (433 seeds, median 107 nt); ~300 nt: Clostridiales-3 (157 seeds,
#: median 268 nt). Both have at least 100 seed sequences.
DEFAULT_FAMILIES = {"~100 nt": "RF00162", "~300 nt": "RF02942"}


def family_records(rfam: Path, family: str) -> list:
    """Seed sequences of ``family`` from ``sequences.fasta`` (streamed, not all kept)."""
    return [r for r in iter_fasta(rfam / "sequences.fasta") if r.family == family]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rfam", type=Path, default=Path("../shared/data/rfam"))
    parser.add_argument("--sizes", default="10,50,100", help="comma-separated sequence counts")
    parser.add_argument("--short-family", default=DEFAULT_FAMILIES["~100 nt"])
    parser.add_argument("--long-family", default=DEFAULT_FAMILIES["~300 nt"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--repeats", type=int, default=1, help="runs per size (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    sizes = [int(n) for n in args.sizes.split(",")]

    header = (f"{'length':<8}{'family':<9}{'n':>4}{'mean nt':>8}  {'total s':>8}{'MAFFT s':>8}"
              f"{'alifold s':>10}{'Infernal s':>11}{'rounds':>7}  {'total/MAFFT':>11}  "
              f"{'SPS full':>8}{'SPS MAFFT':>10}")
    print(f"threads={args.threads}, max rounds={args.rounds}, repeats={args.repeats}")
    print(header)
    print("-" * len(header))
    for label, family in (("~100 nt", args.short_family), ("~300 nt", args.long_family)):
        records = family_records(args.rfam, family)
        reference = read_stockholm(args.rfam / "seeds" / f"{family}.sto")
        for n in sizes:
            if n > len(records):
                print(f"{label:<8}{family:<9}{n:>4}  skipped: only {len(records)} seed sequences")
                continue
            chosen = random.Random(args.seed + n).sample(records, n)
            runs = []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory(prefix="msa-bench-") as folder:
                    started = time.perf_counter()
                    made = align_records(chosen, Path(folder), threads=args.threads,
                                         rounds=args.rounds)
                    runs.append((time.perf_counter() - started, made))
            total = statistics.median(t for t, _ in runs)
            made = runs[0][1]
            mafft = statistics.median(m.seconds["mafft"] for _, m in runs)
            alifold = statistics.median(m.seconds["alifold"] for _, m in runs)
            infernal = statistics.median(m.seconds["infernal"] for _, m in runs)
            assert made.final is not None
            sps_full = sum_of_pairs_score(made.final, reference)
            sps_mafft = sum_of_pairs_score(made.draft, reference)
            mean_len = statistics.mean(len(r.sequence) for r in chosen)
            print(f"{label:<8}{family:<9}{n:>4}{mean_len:>8.0f}  {total:>8.1f}{mafft:>8.1f}"
                  f"{alifold:>10.2f}{infernal:>11.1f}{made.rounds:>7}  {total / mafft:>11.1f}  "
                  f"{sps_full:>8.3f}{sps_mafft:>10.3f}", flush=True)
    print(f"draft aligner: {made.aligner} ({'; '.join(made.warnings) or 'as requested'})")


if __name__ == "__main__":
    main()
