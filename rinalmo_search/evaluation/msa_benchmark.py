"""MSA quality against Rfam seed alignments, for sets retrieved by our search and by BLASTn.

For each test family, one or more seed members are queries. The database holds the seed
sequences of the test families plus a random background of other families' seed sequences,
indexed into a Milvus Lite collection with the project's embedder and searched with the
project's pipeline; BLASTn searches the same sequences. Of each tool's top-``k`` hits, the seed
members of the query's family are aligned with the query by our pipeline (and by MAFFT alone,
to show what the Infernal refinement adds), and scored on those members against the family's
Rfam seed alignment. Only seed members are scored: Rfam's full alignments are themselves
cmalign output and would reward agreement with cmalign rather than correctness.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..msa.pipeline import align_records
from ..msa.stockholm import Stockholm, read_stockholm
from ..seqio import SequenceRecord, atomic_write, read_fasta
from .msa_metrics import base_pair_f1, score_alignment, subset

log = logging.getLogger(__name__)

#: Six families of 26–78 seed sequences, median lengths 64–116 nt, of different kinds: Vault, SECIS
#: element, CopA antisense RNA, RyhB sRNA, HDV ribozyme, S15 leader. They are hard ones (HDV's two
#: distant subgroups, SECIS's divergent members): SPS about 0.80, against about 0.92 on random
#: samples of 16 families of 15–80 seeds (see the README's MSA section).
DEFAULT_FAMILIES = ("RF00006", "RF00031", "RF00042", "RF00057", "RF00094", "RF00114")
#: Retrieved set × aligner: what each score column measures.
METHODS = ("ours", "blastn", "ours_mafft", "blastn_mafft", "ours_common", "blastn_common")
METHOD_TITLES = {
    "ours": "our top-k, full pipeline",
    "blastn": "BLASTn top-k, full pipeline",
    "ours_mafft": "our top-k, MAFFT alone",
    "blastn_mafft": "BLASTn top-k, MAFFT alone",
    # the two full-pipeline alignments scored on the seed members both tools retrieved: the
    # same pairs, so alignment quality is compared without the sets' difference in difficulty
    "ours_common": "our alignment, on members both tools found",
    "blastn_common": "BLASTn-set alignment, on members both tools found",
}


@dataclass
class QueryScores:
    """Scores for one query of one family.

    Attributes:
        family: Rfam accession.
        query: id of the query (a seed member).
        n_seed: sequences in the family's seed.
        members: method → seed members aligned (query included).
        sps: method → sum-of-pairs score (nan when only the query was retrieved).
        column_score: method → total-column score.
        bp_f1: method → base-pair F1 of our SS_cons against the seed's.
        seconds: method → wall time of the alignment.
    """

    family: str
    query: str
    n_seed: int
    members: dict[str, int] = field(default_factory=dict)
    sps: dict[str, float] = field(default_factory=dict)
    column_score: dict[str, float] = field(default_factory=dict)
    bp_f1: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def nanmean(values: Sequence[float]) -> float:
    """Mean of the values that are not nan (nan if there are none)."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def seed_path(rfam_dir: Path, family: str) -> Path:
    """Path of a family's seed alignment, checked to exist.

    Raises:
        InputError: no such seed file.
    """
    path = rfam_dir / "seeds" / f"{family}.sto"
    if not path.is_file():
        raise InputError(f"no seed alignment for family {family!r} (expected {path})")
    return path


def build_database(
    records: Sequence[SequenceRecord], families: Sequence[str], background: int, seed: int
) -> list[SequenceRecord]:
    """The test families' sequences plus ``background`` random sequences of other families."""
    chosen = set(families)
    members = [r for r in records if r.family in chosen]
    others = [r for r in records if r.family not in chosen]
    rng = random.Random(seed)
    extra = rng.sample(others, min(background, len(others)))
    return members + extra


def _ours(
    queries: list[SequenceRecord], database: list[SequenceRecord], *, model: str, top_k: int,
    db_path: Path, threads: int, rerank: str,
) -> dict[str, list[str]]:
    from ..embedder import load_embedder
    from ..milvus import VectorStore
    from ..pipeline import index_records, search_records

    with load_embedder(model) as embedder, \
            VectorStore(str(db_path), collection="msa_evaluation") as store:
        report = index_records(database, store, embedder, progress=False)
        log.info("our index: %s", report.summary())
        # Search the finished HNSW index, not a brute-force pass over segments still being
        # indexed, so that a rerun retrieves the same sets.
        store.wait_for_index(timeout=600)
        results = search_records(queries, store, embedder, top_k=top_k, rerank=rerank,
                                 threads=threads)
    return {q.id: [hit.target_id for hit in hits] for q, hits in zip(queries, results, strict=True)}


def _blastn(
    queries: list[SequenceRecord], database: list[SequenceRecord], *, top_k: int, threads: int,
    work: Path,
) -> dict[str, list[str]]:
    from .peers import run_peer

    # A loose E-value: the comparison is on BLASTn's top-k, as in the issue, not on its cut-off.
    run = run_peer("blastn", queries, database, threads=threads, evalue=10.0, max_hits=top_k,
                   workdir=work)
    return {q.id: [target for target, _ in run.hits.get(q.id, [])] for q in queries}


def _score(test: Stockholm, reference: Stockholm) -> tuple[float, float, float]:
    scores = score_alignment(test, reference)
    return scores.sps, scores.column_score, base_pair_f1(test, reference)


def evaluate_msa(
    rfam_dir: str | Path,
    *,
    families: Sequence[str] = DEFAULT_FAMILIES,
    queries_per_family: int = 1,
    background: int = 2000,
    top_k: int = 100,
    model: str = "",
    rerank: str | None = None,
    threads: int = 1,
    aligner: str = "auto",
    seed: int = 1,
    work_dir: Path | None = None,
    progress: bool = True,
) -> list[QueryScores]:
    """Score our MSAs of retrieved seed members against Rfam seed alignments.

    Arguments:
        rfam_dir: folder with ``sequences.fasta`` and ``seeds/RFxxxxx.sto``.
        families: Rfam accessions to test.
        queries_per_family: seed members used as queries per family (drawn with ``seed``).
        background: random sequences of other families added to the database.
        top_k: hits per query kept from each tool.
        model: embedder name or model file (empty: the project's default model).
        rerank: our search's stage 2 (``None``: the ``search`` command's default).
        threads: threads for BLASTn, MAFFT and cmalign.
        aligner: MAFFT draft strategy (``auto``, ``xinsi``, ``linsi``).
        seed: random seed for the background and the queries.
        work_dir: where the temporary folder (Milvus Lite file, BLAST database) is made.
        progress: show a progress bar.

    Returns:
        One :class:`QueryScores` per query.

    Raises:
        InputError: missing Rfam files or an unknown family.
        ToolError: a program missing or failing.
    """
    from ..embedder import DEFAULT_MODEL
    from ..rerank import DEFAULT_RERANK

    rfam_dir = Path(rfam_dir)
    references = {family: read_stockholm(seed_path(rfam_dir, family)) for family in families}
    records = read_fasta(rfam_dir / "sequences.fasta")
    by_id = {r.id: r for r in records}
    rng = random.Random(seed)
    queries: list[SequenceRecord] = []
    family_of: dict[str, str] = {}
    for family, reference in references.items():
        present = [name for name in reference.names if name in by_id]
        if not present:
            raise InputError(f"no sequence of the {family} seed is in {rfam_dir}/sequences.fasta")
        for name in rng.sample(present, min(queries_per_family, len(present))):
            queries.append(by_id[name])
            family_of[name] = family
    database = build_database(records, list(families), background, seed)
    log.info("%d queries from %d families; database of %d sequences; model %s, rerank %s",
             len(queries), len(families), len(database), model or DEFAULT_MODEL,
             DEFAULT_RERANK if rerank is None else rerank)
    results: list[QueryScores] = []
    with tempfile.TemporaryDirectory(prefix="rinalmo-evaluate-msa-", dir=work_dir) as folder:
        work = Path(folder)
        retrieved = {
            "ours": _ours(queries, database, model=model or DEFAULT_MODEL, top_k=top_k,
                          db_path=work / "evaluation.db", threads=threads,
                          rerank=DEFAULT_RERANK if rerank is None else rerank),
            "blastn": _blastn(queries, database, top_k=top_k, threads=threads, work=work),
        }
        for query in tqdm(queries, desc="aligning", unit="query", disable=not progress):
            family = family_of[query.id]
            reference = references[family]
            seed_names = set(reference.names)
            row = QueryScores(family=family, query=query.id, n_seed=len(reference.names))
            members: dict[str, list[str]] = {}
            finals: dict[str, Stockholm] = {}
            for source in ("ours", "blastn"):
                ids = [query.id] + [
                    t for t in retrieved[source][query.id] if t in seed_names and t != query.id
                ]
                members[source] = ids
                for method in (source, f"{source}_mafft"):
                    row.members[method] = len(ids)
                if len(ids) < 2:
                    for method in (source, f"{source}_mafft"):
                        row.sps[method] = row.column_score[method] = math.nan
                        row.bp_f1[method] = math.nan
                    continue
                started = time.perf_counter()
                made = align_records([by_id[i] for i in ids], Path(tempfile.mkdtemp(dir=work)),
                                     threads=threads, aligner=aligner)
                row.seconds[source] = time.perf_counter() - started
                assert made.final is not None
                finals[source] = made.final
                for method, alignment in ((source, made.final), (f"{source}_mafft", made.draft)):
                    sps, cs, f1 = _score(alignment, reference)
                    row.sps[method], row.column_score[method], row.bp_f1[method] = sps, cs, f1
            common = [name for name in members["ours"] if name in set(members["blastn"])]
            for source in ("ours", "blastn"):
                method = f"{source}_common"
                row.members[method] = len(common)
                if len(common) < 2:
                    row.sps[method] = row.column_score[method] = row.bp_f1[method] = math.nan
                    continue
                sps, cs, f1 = _score(subset(finals[source], common), reference)
                row.sps[method], row.column_score[method], row.bp_f1[method] = sps, cs, f1
            results.append(row)
            log.info("%s %s: SPS ours %.3f (n=%d), BLASTn %.3f (n=%d), MAFFT alone %.3f",
                     family, query.id, row.sps["ours"], row.members["ours"],
                     row.sps["blastn"], row.members["blastn"], row.sps["ours_mafft"])
    return results


def scored_by_both(row: QueryScores) -> bool:
    """Whether both tools retrieved at least one seed member besides the query."""
    return not (math.isnan(row.sps["ours"]) or math.isnan(row.sps["blastn"]))


def family_means(
    results: Sequence[QueryScores], *, paired: bool = False
) -> list[dict[str, float | str | int]]:
    """One row per family: means over its queries of members and scores.

    Arguments:
        results: per-query scores.
        paired: keep only the queries both tools scored (:func:`scored_by_both`), so that a
            query where one tool retrieved no other member (no SPS) is left out of both
            tools' means, not of one only; families left without a query are dropped.
    """
    rows: list[dict[str, float | str | int]] = []
    for family in dict.fromkeys(r.family for r in results):
        mine = [r for r in results if r.family == family and (not paired or scored_by_both(r))]
        if not mine:
            continue
        row: dict[str, float | str | int] = {"family": family, "queries": len(mine),
                                             "n_seed": mine[0].n_seed}
        for method in METHODS:
            row[f"members_{method}"] = sum(r.members[method] for r in mine) / len(mine)
            row[f"sps_{method}"] = nanmean([r.sps[method] for r in mine])
            row[f"cs_{method}"] = nanmean([r.column_score[method] for r in mine])
            row[f"bpf1_{method}"] = nanmean([r.bp_f1[method] for r in mine])
        rows.append(row)
    return rows


def write_results(results: Sequence[QueryScores], path: str | Path) -> None:
    """Per-query scores as TSV (header first), written atomically."""
    columns = ["family", "query", "n_seed"]
    for prefix in ("members", "sps", "cs", "bpf1"):
        columns += [f"{prefix}_{method}" for method in METHODS]
    columns += ["seconds_ours", "seconds_blastn"]
    with atomic_write(path) as handle:
        handle.write("\t".join(columns) + "\n")
        for r in results:
            cells: list[str] = [r.family, r.query, str(r.n_seed)]
            cells += [str(r.members[m]) for m in METHODS]
            for table in (r.sps, r.column_score, r.bp_f1):
                cells += [f"{table[m]:.4f}" for m in METHODS]
            cells += [f"{r.seconds.get(s, math.nan):.2f}" for s in ("ours", "blastn")]
            handle.write("\t".join(cells) + "\n")


def summary_table(results: Sequence[QueryScores]) -> str:
    """A plain-text table of per-family means and the mean over families."""
    rows = family_means(results)
    header = (f"{'family':<9}{'seed':>5}  {'n ours':>6} {'SPS ours':>8}  {'n BLASTn':>8} "
              f"{'SPS BLASTn':>10}  {'SPS MAFFT alone':>15}  {'CS ours':>7} {'CS BLASTn':>9}  "
              f"{'bpF1 ours':>9}  {'n both':>6} {'SPS ours|both':>13} {'SPS BLASTn|both':>15}")
    lines = [header, "-" * len(header)]

    def line(label: str, seed: str, values: dict) -> str:
        return (f"{label:<9}{seed:>5}  {values['members_ours']:>6.1f} {values['sps_ours']:>8.3f}  "
                f"{values['members_blastn']:>8.1f} {values['sps_blastn']:>10.3f}  "
                f"{values['sps_ours_mafft']:>15.3f}  {values['cs_ours']:>7.3f} "
                f"{values['cs_blastn']:>9.3f}  {values['bpf1_ours']:>9.3f}  "
                f"{values['members_ours_common']:>6.1f} {values['sps_ours_common']:>13.3f} "
                f"{values['sps_blastn_common']:>15.3f}")

    for row in rows:
        lines.append(line(str(row["family"]), str(row["n_seed"]), row))
    means = {key: nanmean([float(r[key]) for r in rows]) for key in rows[0] if key != "family"}
    lines.append("-" * len(header))
    lines.append(line("mean", "", means))
    paired = family_means(results, paired=True)
    if paired:
        keys = [key for key in paired[0] if key != "family"]
        lines.append(line("paired", "", {k: nanmean([float(r[k]) for r in paired]) for k in keys}))
        queries = sum(int(r["queries"]) for r in paired)
        lines.append(f"paired: the {queries} of {len(results)} queries where both tools retrieved "
                     "another seed member (the same queries in both means)")
    return "\n".join(lines)
