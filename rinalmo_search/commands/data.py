"""``rinalmo-search data``: prepare a clan-grouped training split, download Rfam release files."""

from __future__ import annotations

import argparse
import logging
import os

from .common import require_positive

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # split the shared Rfam seed families (length filter, MMseqs2 de-dup, clan-grouped 80/10/10)
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out data/split

  # a small split of a few families, exact de-duplication only, another seed
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out tiny \\
      --families RF00001,RF00005,RF00023 --dedup exact --seed 7

  # fetch an Rfam release (seed, clans, full regions, family table) and prepare it
  rinalmo-search data download-rfam --release 14.10 --out rfam-14.10
  rinalmo-search data prepare --rfam-dir rfam-14.10 --out data/split-14.10
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` and its sub-commands."""
    from rinalmo_search.cli import HelpFormatter

    parser = subparsers.add_parser(
        "data",
        help="prepare training data (split) and download Rfam release files",
        description="Turn Rfam release files into a clan-grouped, de-duplicated training split.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)

    prepare = actions.add_parser(
        "prepare",
        help="length filter, MMseqs2 de-duplication and clan-grouped family split",
        description=(
            "Read sequences and family/clan labels from an Rfam folder, keep sequences within the "
            "length range, de-duplicate each family with MMseqs2 (identity/coverage), and split "
            "families into train/validation/test so that no clan straddles two splits. Writes "
            "sequences.fasta, families.tsv, split.json and manifest.json to --out."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    prepare.add_argument("--rfam-dir", required=True, help="Rfam release folder or seed folder")
    prepare.add_argument("--out", required=True, help="split folder to write")
    prepare.add_argument(
        "--source", default="auto", choices=["auto", "seed", "full", "fasta"],
        help="which sequences to read: auto = full-family FASTA if present, else seeds, "
        "else sequences.fasta",
    )
    prepare.add_argument("--min-length", type=int, default=50, help="shortest sequence kept (nt)")
    prepare.add_argument("--max-length", type=int, default=1024, help="longest sequence kept (nt)")
    prepare.add_argument(
        "--dedup", default="mmseqs", choices=["mmseqs", "exact", "none"],
        help="redundancy reduction within families",
    )
    prepare.add_argument("--min-seq-id", type=float, default=0.9, help="MMseqs2 identity")
    prepare.add_argument("--coverage", type=float, default=0.8, help="MMseqs2 coverage")
    prepare.add_argument(
        "--mmseqs-k", type=int, default=11,
        help="MMseqs2 prefilter k-mer size (0 = MMseqs2's default, which needs ~8 GB of memory)",
    )
    prepare.add_argument(
        "--min-family-size", type=int, default=2, help="drop families with fewer kept sequences"
    )
    prepare.add_argument(
        "--fractions", default="0.8,0.1,0.1", help="train,validation,test shares of families"
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the split")
    prepare.add_argument(
        "--families", default="", help="comma-separated family accessions to keep (default: all)"
    )
    prepare.add_argument(
        "--threads", type=int, default=min(8, os.cpu_count() or 1), help="MMseqs2 threads"
    )
    prepare.set_defaults(handler=run_prepare)

    download = actions.add_parser(
        "download-rfam",
        help="download Rfam release files (resumable, checksummed)",
        description=(
            "Download Rfam.seed.gz, Rfam.clanin, Rfam.full_region.gz and database_files/"
            "family.txt.gz of one release from Rfam's FTP site (over HTTPS). Interrupted downloads "
            "resume; files are checked against the release's md5.txt where it lists them."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    download.add_argument("--release", default="14.10", help="Rfam release, e.g. 14.10")
    download.add_argument("--out", required=True, help="folder to download into")
    download.add_argument(
        "--base-url", default=None,
        help="mirror URL holding RELEASE/ folders (default: Rfam's FTP site over HTTPS)",
    )
    download.add_argument(
        "--fasta", action="store_true",
        help="also download the per-family FASTA files (fasta_files/RF*.fa.gz, several GB)",
    )
    download.add_argument(
        "--files", default="", help="comma-separated file names to fetch instead of the defaults"
    )
    download.set_defaults(handler=run_download)


def run_prepare(args: argparse.Namespace) -> int:
    """Handler of ``data prepare``."""
    from rinalmo_search.errors import ConfigError

    require_positive(args, "threads", "min_length", "max_length", "min_family_size")
    from rinalmo_search.training.prepare import PrepareOptions, prepare_dataset

    try:
        fractions = tuple(float(x) for x in args.fractions.split(","))
    except ValueError:
        raise ConfigError(
            f"Invalid '--fractions' value: {args.fractions!r} (expected three numbers, e.g. "
            "0.8,0.1,0.1)"
        ) from None
    options = PrepareOptions(
        min_length=args.min_length, max_length=args.max_length, dedup=args.dedup,
        min_seq_id=args.min_seq_id, coverage=args.coverage, kmer_size=args.mmseqs_k,
        min_family_size=args.min_family_size, fractions=fractions,  # type: ignore[arg-type]
        seed=args.seed, threads=args.threads, source=args.source,
        families=[f.strip() for f in args.families.split(",") if f.strip()],
    )
    manifest = prepare_dataset(args.rfam_dir, args.out, options)
    counts = manifest["counts"]
    for name, row in counts["by_split"].items():
        log.info("%-10s %5d families %6d sequences %4d clans", name, row["families"],
                 row["sequences"], row["clans"])
    log.info(
        "read %d sequences, %d within length, %d after de-dup; timings %s",
        counts["sequences_read"], counts["sequences_length_ok"],
        counts["sequences_after_dedup"], manifest["timings"],
    )
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Handler of ``data download-rfam``."""
    from rinalmo_search.training.download import DEFAULT_BASE_URL, DEFAULT_FILES, download_release

    files = [f.strip() for f in args.files.split(",") if f.strip()] or list(DEFAULT_FILES)
    written = download_release(
        args.release, args.out, base_url=args.base_url or DEFAULT_BASE_URL, files=files,
        with_fasta=args.fasta,
    )
    log.info("%d files in %s", len(written), args.out)
    return 0
