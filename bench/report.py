"""The benchmark report: ``report.md`` (tables) and PNG plots, from the results document.

Plots (matplotlib, Agg backend): ``pr_curves.png`` (pooled precision–recall per tool),
``latency_vs_size.png`` (p50 latency against database size, log–log), ``embedding_map.png``
(test-family embeddings projected to 2-D with UMAP, or PCA/t-SNE when asked or when
``umap-learn`` is missing, coloured by family, clans outlined by their convex hull).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QUALITY_COLUMNS = (
    ("ap", "AP"), ("precision", "P@thr"), ("recall", "R@thr"), ("f1", "F1@thr"),
    ("recall_at_r", "R@R"), ("sens_first_fp", "sens→1st FP"), ("p_at_10", "P@10"),
)
BUCKETS = ("<20", "20-99", ">=100")
#: Runs on a subset of the queries only: shown in the subset table, not the main ones.
SUBSET_ONLY = "cmsearch-1seq"


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f}" if value < 10 else f"{value * 1000:.0f}"


def scaling_markdown(scaling: dict[str, Any]) -> list[str]:
    """The speed-and-scaling tables."""
    lines = [
        "## Speed and scaling", "",
        f"Database: {scaling['database']}. {scaling['n_queries']} queries (fewer where the "
        "*n* column says so), each searched alone "
        f"(one process per query for the peers; one `search_records` call for ours), top "
        f"{scaling['top_k']} hits, E ≤ {scaling['evalue']} for the peers, {scaling['threads']} "
        "thread(s). Latency excludes model load (listed apart); index build = BLASTn "
        "`makeblastdb`, MMseqs2 `createdb` (its `createindex` needs ~8 GB RAM; each search "
        "builds that k-mer table instead), ours embed + Milvus Lite insert + HNSW build. "
        "Timings taken while other jobs shared the machine (see the load average): compare "
        "rows of one size, measured minutes apart, rather than trusting small exponents. "
        "*batch* = all queries in one call, seconds per query. `+sw` rows: the default "
        "two-stage search, whose stage 1 fetches 1,000 candidates with their sequences from "
        "Milvus Lite (most of its cost; the Smith–Waterman re-scoring itself takes ~2 ms).", "",
        "| tool | DB size | n | p50 ms | p95 ms | p50 / BLASTn | batch ms/query | "
        "index build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(scaling["rows"], key=lambda r: (r["tool"], r["size"])):
        lines.append(
            f"| {row['tool']} | {row['size']:,} | {row['n_queries']} | {_ms(row['p50'])} | "
            f"{_ms(row['p95'])} | "
            f"{_f(row.get('ratio_to_blastn_p50'), 3)} | {_ms(row['batch_seconds_per_query'])} "
            f"| {_f(row['index_seconds'], 1)} |"
        )
    lines += ["", "Growth exponent (slope of log time against log database size; 1 = linear):",
              "", "| tool | p50 latency | index build |", "|---|---:|---:|"]
    for tool, exps in scaling["exponents"].items():
        lines.append(f"| {tool} | {_f(exps['p50'], 2)} | {_f(exps['index'], 2)} |")
    loads = {r["tool"].split("+")[0]: r["details"].get("model_load_s") for r in scaling["rows"]
             if "model_load_s" in r["details"]}
    if loads:
        lines += ["", "Model load (not in latencies): " + ", ".join(
            f"{tool} {seconds:.2f} s" for tool, seconds in loads.items()) + "."]
    lines += _skipped(scaling.get("skipped", {}), "Not measured")
    lines.append("")
    return lines


def _skipped(skipped: dict[str, str], verb: str) -> list[str]:
    """One line per distinct reason (the RiNALMo models share theirs)."""
    by_reason: dict[str, list[str]] = {}
    for tool, reason in skipped.items():
        short = reason.split(": expected")[0].split(" (")[0]
        by_reason.setdefault(short, []).append(tool)
    return ["", *(f"{verb}: {', '.join(f'**{t}**' for t in tools)} — {reason}."
                  for reason, tools in by_reason.items())] if by_reason else []


def _quality_table(rows: list[dict[str, Any]], bucket: str) -> list[str]:
    header = "| tool | queries | " + " | ".join(label for _, label in QUALITY_COLUMNS) + \
        " | s/query |"
    lines = [header, "|---|---:|" + "---:|" * (len(QUALITY_COLUMNS) + 1)]
    for row in rows:
        metrics = row["metrics"].get(bucket, {})
        if not metrics.get("families") or row["tool"] == SUBSET_ONLY:
            continue
        lines.append(
            f"| {row['tool']} | {int(metrics.get('queries', 0))} | "
            + " | ".join(_f(metrics.get(key)) for key, _ in QUALITY_COLUMNS)
            + f" | {_f(row['seconds_per_query'], 3)} |"
        )
    return lines


def quality_markdown(quality: dict[str, Any]) -> list[str]:
    """The retrieval-quality tables (overall, per family-size bucket, cmsearch subset)."""
    meta = quality["meta"]
    lines = [
        "## Retrieval quality", "",
        f"Protocol of `rinalmo-search evaluate` (same-family hit = TP, same clan other family "
        f"ignored, else FP; macro average over families). {meta['note']}. Ours: exact cosine "
        f"top-{meta['top_k']} then re-ranking (`none` = stage 1 only), threshold (@thr) chosen "
        f"on the validation families; peers report E ≤ {meta['evalue']} (@thr = everything "
        "they report). s/query excludes database preparation.", "",
        *(f"**Warning:** {warning}\n" for warning in meta.get("warnings") or []),
        "### All test families", "",
    ]
    lines += _quality_table(quality["runs"], "all")
    if any(r["tool"] == SUBSET_ONLY for r in quality["runs"]):
        lines += ["", f"`{SUBSET_ONLY}` ran on a few queries only: see the cmsearch subset "
                  "table below."]
    for bucket in BUCKETS:
        families = [r["metrics"].get(bucket, {}).get("families", 0) for r in quality["runs"]]
        if any(families):
            lines += ["", f"### Families with {bucket} members ({max(families)} families)", ""]
            lines += _quality_table(quality["runs"], bucket)
    subset = quality.get("subset") or {}
    if subset:
        lines += [
            "", f"### cmsearch subset ({subset['queries']} queries, one per family)", "",
            "`cmsearch-1seq`: CM from the query alone + its RNAfold MFE structure (cmbuild), "
            f"calibrated with `{subset.get('calibration', 'cmcalibrate -L 0.01')}` only (a full "
            "calibration takes 10–20 min per model here), hits ranked by bit score, reported "
            "at that rough E ≤ threshold. Every tool scored on the same queries:",
            "", "| tool | " + " | ".join(label for _, label in QUALITY_COLUMNS) + " |",
            "|---|" + "---:|" * len(QUALITY_COLUMNS),
        ]
        for row in subset["rows"]:
            lines.append(f"| {row['tool']} | "
                         + " | ".join(_f(row["metrics"].get(k)) for k, _ in QUALITY_COLUMNS)
                         + " |")
    lines += _skipped(quality.get("skipped", {}), "Not run")
    lines.append("")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    machine = results["machine"]
    lines = [
        "# RiNALMo-Search benchmark", "",
        f"Date: {results['date']} · machine: {machine['description']} · mode: "
        f"{'quick' if results['quick'] else 'full'} · command: `{results['command']}`", "",
        "Tool versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()), "",
    ]
    if results.get("scaling"):
        lines += scaling_markdown(results["scaling"])
    if results.get("quality"):
        lines += quality_markdown(results["quality"])
    lines += ["## Plots", ""]
    for name, caption in results.get("plots", {}).items():
        lines.append(f"- `{name}`: {caption}")
    lines += ["", "## Not measured", ""] + [f"- {item}" for item in results.get("limits", [])]
    return "\n".join(lines) + "\n"


def plot_pr_curves(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Pooled precision–recall curve of each tool."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    styles = ("-", "--", "-.", ":")
    for index, (tool, curve) in enumerate(curves.items()):
        if curve["recall"]:
            label = f"{tool} (subset of queries)" if tool == SUBSET_ONLY else tool
            line, = ax.plot(curve["recall"], curve["precision"], label=label, linewidth=1.5,
                            linestyle=styles[index % len(styles)])
            # where a tool stops reporting hits (peers stop at their E-value cut-off)
            ax.plot(curve["recall"][-1], curve["precision"][-1], "o", color=line.get_color())
    ax.set_xlabel("recall (all positives of all queries)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision–recall, hits pooled over queries")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latency(scaling: dict[str, Any], path: Path) -> None:
    """p50 latency (with p95 as a bar) against database size, log–log."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    tools = list(dict.fromkeys(r["tool"] for r in scaling["rows"]))
    for tool in tools:
        rows = sorted((r for r in scaling["rows"] if r["tool"] == tool and r["p50"]),
                      key=lambda r: r["size"])
        if not rows:
            continue
        sizes = [r["size"] for r in rows]
        p50 = np.array([r["p50"] for r in rows])
        p95 = np.array([r["p95"] for r in rows])
        slope = scaling["exponents"].get(tool, {}).get("p50")
        label = tool if slope is None else f"{tool} (slope {slope:.2f})"
        ax.errorbar(sizes, p50, yerr=[np.zeros_like(p50), p95 - p50], marker="o", capsize=3,
                    label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("database size (sequences)")
    ax.set_ylabel("per-query latency, s (p50, bar to p95)")
    ax.set_title("Latency against database size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def project(vectors: np.ndarray, method: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D projection; ``auto`` = UMAP if ``umap-learn`` imports, else PCA. Returns the method."""
    if method in ("auto", "umap"):
        try:
            import umap

            neighbours = max(2, min(15, len(vectors) - 1))
            reducer = umap.UMAP(n_neighbors=neighbours, metric="cosine", random_state=seed,
                                n_jobs=1)
            return reducer.fit_transform(vectors), "UMAP (cosine)"
        except ImportError:
            if method == "umap":
                raise
            log.warning("umap-learn not installed: using PCA for the embedding map")
            method = "pca"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(2.0, min(30.0, (len(vectors) - 1) / 3))
        return TSNE(perplexity=perplexity, random_state=seed, metric="cosine",
                    init="pca").fit_transform(vectors), "t-SNE (cosine)"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(vectors), "PCA"


def plot_embedding_map(embeddings: dict[str, Any], path: Path, *, method: str) -> str:
    """Test-family embeddings in 2-D, coloured by family, clans outlined; returns the method."""
    import matplotlib.pyplot as plt
    from scipy.spatial import ConvexHull, QhullError

    vectors = np.asarray(embeddings["vectors"])
    families = np.asarray(embeddings["family"])
    clans = np.asarray(embeddings["clan"])
    points, used = project(vectors, method)
    fig, ax = plt.subplots(figsize=(7, 6))
    names = sorted(set(families.tolist()))
    cmap = plt.get_cmap("tab20")
    for index, family in enumerate(names):
        mask = families == family
        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=cmap(index % 20),
                   label=family if len(names) <= 20 else None, alpha=0.8)
    for clan in sorted(set(clans.tolist()) - {""}):
        mask = clans == clan
        if len(set(families[mask].tolist())) < 2 or mask.sum() < 3:
            continue
        try:
            hull = ConvexHull(points[mask])
        except QhullError:
            continue
        ring = points[mask][np.append(hull.vertices, hull.vertices[0])]
        ax.plot(ring[:, 0], ring[:, 1], "k--", linewidth=0.8)
        ax.annotate(clan, ring[0], fontsize=7)
    ax.set_title(f"Test-family embeddings ({embeddings['model']}), {used}; "
                 "dashed: clans", fontsize=9)
    if len(names) <= 20:
        ax.legend(fontsize=6, markerscale=1.5, ncol=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return used


def _merge_scaling(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    """Rows of ``second`` for (tool, size) pairs ``first`` lacks; exponents recomputed.

    Ratios to BLASTn stay those of each row's own run (BLASTn measured beside it).
    """
    if first is None:
        return dict(second)
    from scaling import growth_exponent

    merged = dict(first)
    have = {(r["tool"], r["size"]) for r in first["rows"]}
    merged["rows"] = list(first["rows"]) + [
        dict(r, details={**r.get("details", {}), "run": "second run"})
        for r in second["rows"] if (r["tool"], r["size"]) not in have]
    tools = {r["tool"] for r in merged["rows"]}
    merged["skipped"] = {k: v for k, v in {**first.get("skipped", {}),
                                           **second.get("skipped", {})}.items()
                         if k.split(" at ")[0] not in tools}
    merged["exponents"] = {}
    for tool in dict.fromkeys(r["tool"] for r in merged["rows"]):
        mine = sorted((r for r in merged["rows"] if r["tool"] == tool), key=lambda r: r["size"])
        merged["exponents"][tool] = {
            "p50": growth_exponent([r["size"] for r in mine], [r["p50"] for r in mine]),
            "index": growth_exponent([r["size"] for r in mine],
                                     [r["index_seconds"] for r in mine]),
        }
    merged["sizes"] = sorted(set(first["sizes"]) | set(second["sizes"]))
    if max(second["sizes"]) > max(first["sizes"]):
        merged["database"] = second["database"]
    return merged


def merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from several runs' (e.g. scaling and quality run side by side).

    The first document gives date, machine and mode; sections, plots and limits are united
    (a section present in several documents is taken from the last), skipped-section notes of
    one run are dropped where another run has that section.
    """
    merged = dict(documents[0])
    merged["plots"] = {}
    merged["limits"] = []
    merged["command"] = " ; ".join(str(d["command"]) for d in documents)
    merged.pop("scaling", None)
    for document in documents:
        if document.get("quality"):
            merged["quality"] = document["quality"]
        if document.get("scaling"):
            merged["scaling"] = _merge_scaling(merged.get("scaling"), document["scaling"])
        merged["plots"].update(document.get("plots", {}))
    for document in documents:
        for item in document.get("limits", []):
            skipped = ("Scaling section skipped" in item and merged.get("scaling")) or (
                "Quality section skipped" in item and merged.get("quality"))
            if item.startswith("Scaling measured at"):
                continue  # restated below from the merged sizes
            if not skipped and item not in merged["limits"]:
                merged["limits"].append(item)
    if merged.get("scaling", {}).get("rows"):
        sizes: dict[str, list[int]] = {}
        for row in merged["scaling"]["rows"]:
            sizes.setdefault(row["tool"], []).append(row["size"])
        merged["limits"].insert(0, "Scaling measured at: " + "; ".join(
            f"{tool} {', '.join(f'{s:,}' for s in sorted(v))}" for tool, v in sizes.items())
            + " sequences. The ≥1,000,000 target size is not measured.")
    return merged


def main(argv: list[str] | None = None) -> int:
    """``python bench/report.py A/results.json B/results.json --out DIR``: one merged report."""
    import argparse
    import json
    import shutil

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="results.json files of bench/run.py")
    parser.add_argument("--out", type=Path, required=True, help="folder for the merged report")
    args = parser.parse_args(argv)
    documents = [json.loads(path.read_text()) for path in args.results]
    merged = merge(documents)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.results:
        for name in documents[args.results.index(path)].get("plots", {}):
            if (path.parent / name).exists() and path.parent.resolve() != args.out.resolve():
                shutil.copy2(path.parent / name, args.out / name)
    (args.out / "results.json").write_text(json.dumps(merged, indent=1))
    (args.out / "report.md").write_text(markdown(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
