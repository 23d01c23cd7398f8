"""One command for the whole benchmark: speed/scaling and retrieval quality, all tools, one run.

Runs on this machine, in one process, the same queries against the same databases for our
tool (every registered model that loads here, stage 1 alone and with the default re-ranker),
BLASTn, MMseqs2, nhmmer and Infernal ``cmsearch`` with a one-sequence CM, then writes
``results.json``, ``report.md`` and the plots into ``--out`` (default ``bench/out/``).

examples:
  rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out split --mmseqs-k 0
  python bench/run.py --quick --split split         # a few minutes: tiny sizes, few queries
  python bench/run.py --split split                 # sizes 10k and 70k, 30 test families
  python bench/run.py --split split --sizes 10000,70000,1000000 --scaling-queries 50
  python bench/run.py --skip-quality --sizes 10000,200000
  python bench/run.py --split split --skip-scaling --families 0 --quality-db-size 0   # full
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import quality  # noqa: E402
import report  # noqa: E402
import scaling  # noqa: E402
from rinalmo_search.embedder import MODELS  # noqa: E402

from rinalmo_search.evaluation.peers import PEERS, SINGLE_CM, peer_version  # noqa: E402
from rinalmo_search.evaluation.split import load_retrieval_set  # noqa: E402
from rinalmo_search.seqio import read_fasta  # noqa: E402

log = logging.getLogger("bench")

QUICK = {"sizes": "300,1000", "scaling_queries": 2, "families": 4, "queries_per_family": 2,
         "quality_db_size": 600, "cm_queries": 1, "projection": "pca"}
FULL = {"sizes": "10000,70000", "scaling_queries": 20, "families": 30, "queries_per_family": 3,
        "quality_db_size": 10000, "cm_queries": 3, "projection": "auto"}
TARGET_SIZE = 1_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset ones take the ``--quick`` or full defaults."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="examples:" + __doc__.split("examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few queries: minutes")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    parser.add_argument("--rfam", type=Path, default=REPO.parent / "shared" / "data" / "rfam",
                        help="Rfam folder with sequences.fasta (default: ../shared/data/rfam)")
    parser.add_argument("--split", type=Path,
                        help="split folder written by 'rinalmo-search data prepare' (needed "
                        "for the quality section; --mmseqs-k 0 gives the shipped model's split)")
    parser.add_argument("--sizes", help=f"database sizes, comma-separated (full: {FULL['sizes']})")
    parser.add_argument("--scaling-queries", type=int, help="queries timed at each size")
    parser.add_argument("--slow-queries", type=int, default=5,
                        help="queries timed for MMseqs2 in scaling (seconds each here)")
    parser.add_argument("--families", type=int, help="test (and validation) families; 0 = all")
    parser.add_argument("--queries-per-family", type=int, help="queries per test family")
    parser.add_argument("--quality-db-size", type=int,
                        help="quality database size (sampled families + decoys); 0 = all")
    parser.add_argument("--cm-queries", type=int, help="queries for cmsearch-1seq (0 = skip)")
    parser.add_argument("--cm-calibrate-mb", type=float, default=0.01,
                        help="cmcalibrate -L for the one-sequence CMs (default 0.01)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="our models, comma-separated (default: every registered one)")
    parser.add_argument("--peers", default=",".join(PEERS), help="peers for quality")
    parser.add_argument("--scaling-peers", default="blastn,mmseqs", help="peers for scaling")
    parser.add_argument("--threads", type=int, default=1, help="threads for every tool")
    parser.add_argument("--projection", choices=("auto", "umap", "pca", "tsne"),
                        help="embedding map projection (quick: pca, full: auto = UMAP)")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.split is None and not args.skip_quality:
        parser.error("--split DIR is needed for the quality section (a folder written by "
                     "'rinalmo-search data prepare'): the models must be scored on families "
                     "they were not trained on, and the report says when they were")
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    cores = os.cpu_count()
    return {
        "description": f"{cores} cores ({cpu}), {platform.system()} {platform.release()}, "
                       f"Python {platform.python_version()}, load average {load[0]:.1f} at start",
        "cores": cores, "cpu": cpu, "load_at_start": load,
        "versions": {
            "blastn": peer_version("blastn"),
            "mmseqs": peer_version("mmseqs"),
            "nhmmer": peer_version("nhmmer"),
            "cmsearch": peer_version(SINGLE_CM),
        },
    }


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("numba", "matplotlib", "pymilvus", "milvus_lite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    work.mkdir(exist_ok=True)
    started = time.perf_counter()
    models = [m for m in args.models.split(",") if m]
    sequences = args.rfam / "sequences.fasta"
    records = read_fasta([sequences])
    log.info("read %d Rfam sequences from %s", len(records), sequences)
    results: dict[str, object] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "command": "python bench/run.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "plots": {},
        "limits": [],
    }
    limits: list[str] = results["limits"]  # type: ignore[assignment]
    plots: dict[str, str] = results["plots"]  # type: ignore[assignment]
    if not args.skip_scaling:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        scale = scaling.run_scaling(
            records, sizes, models=models,
            peers=[p for p in args.scaling_peers.split(",") if p],
            n_queries=args.scaling_queries, slow_queries=args.slow_queries,
            threads=args.threads, workdir=work, seed=args.seed,
        )
        results["scaling"] = scale
        report.plot_latency(scale, args.out / "latency_vs_size.png")
        plots["latency_vs_size.png"] = "per-query latency (p50, bar to p95) against database " \
            "size, log–log, with each tool's growth exponent"
        if max(sizes) < TARGET_SIZE:
            limits.append(f"Scaling measured at {', '.join(f'{s:,}' for s in sizes)} sequences "
                          f"only: the ≥{TARGET_SIZE:,} target size is not measured in this run.")
    else:
        limits.append("Scaling section skipped (--skip-scaling).")
    if not args.skip_quality:
        setup = quality.prepare(load_retrieval_set(args.split), families=args.families,
                                queries_per_family=args.queries_per_family,
                                db_size=args.quality_db_size, seed=args.seed)
        qual = quality.run_quality(
            setup, models=models, peers=[p for p in args.peers.split(",") if p],
            cm_queries=args.cm_queries, cm_calibrate_mb=args.cm_calibrate_mb,
            threads=args.threads,
        )
        results["quality"] = {"meta": qual.meta, "runs": qual.runs, "subset": qual.subset,
                              "pr_curves": qual.pr_curves, "skipped": qual.skipped}
        report.plot_pr_curves(qual.pr_curves, args.out / "pr_curves.png")
        plots["pr_curves.png"] = "precision–recall per tool, hits of all queries pooled"
        if qual.embeddings:
            used = report.plot_embedding_map(qual.embeddings, args.out / "embedding_map.png",
                                             method=args.projection)
            plots["embedding_map.png"] = (f"test-family embeddings of {qual.embeddings['model']}"
                                          f" ({used}), coloured by family, clans outlined")
        if args.quality_db_size > 0:
            limits.append("Quality database is a sample (drawn families plus decoy training "
                          "families), not every sequence of the split as in `rinalmo-search "
                          "evaluate` (`--quality-db-size 0` runs that).")
        if args.cm_queries > 0:
            limits.append(f"cmsearch-1seq ran on {qual.subset.get('queries', 0)} queries only "
                          "(short calibration, bit-score ranking): see its subset table.")
        limits.append("Rfam-CM oracle (the family's own seed CM) not run.")
    else:
        limits.append("Quality section skipped (--skip-quality).")
    results["seconds"] = round(time.perf_counter() - started, 1)
    results = _jsonable(results)  # type: ignore[assignment]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "report.md").write_text(report.markdown(results))
    log.info("report written to %s (%.0f s)", args.out / "report.md", results["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
