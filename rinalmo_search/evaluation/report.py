"""Evaluation report: one JSON document and a markdown table of every tool side by side."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from rinalmo_search.seqio import atomic_write

from .metrics import METRICS, SIZE_BUCKETS
from .protocol import ToolRun

_HEADERS = {
    "ap": "AP", "precision": "P@thr", "recall": "R@thr", "f1": "F1@thr",
    "recall_at_r": "R@R", "sens_first_fp": "Sens@1stFP", "p_at_10": "P@10",
}


def build_report(
    runs: Sequence[ToolRun],
    summaries: Sequence[dict[str, dict[str, float]]],
    *,
    meta: dict[str, object],
) -> dict[str, object]:
    """Gather runs and their metric summaries (same order) into the report document."""
    tools = []
    for run, summary in zip(runs, summaries, strict=True):
        tools.append({
            "name": run.name,
            "threshold": None if run.threshold is None else run.threshold,
            "seconds": {k: round(v, 3) for k, v in run.seconds.items()},
            "seconds_per_query": run.seconds_per_query,
            "threads": run.threads,
            "details": run.details,
            "metrics": summary,
        })
    return {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'})",
        **meta,
        "tools": tools,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as markdown: an overall table, then AP / sensitivity by family size."""
    tools = report["tools"]
    lines = [
        f"### Retrieval on {report.get('split', '?')} ({report.get('created', '')})",
        "",
        f"{report.get('queries', '?')} queries from {report.get('families', '?')} test families "
        f"against {report.get('database', '?')} sequences; family-macro averages. "
        f"{report.get('note', '')}".rstrip(),
        "",
        *(f"**Warning:** {warning}\n" for warning in report.get("warnings") or []),
        "| tool | " + " | ".join(_HEADERS[m] for m in METRICS) + " | s/query | threshold |",
        "|---|" + "---:|" * (len(METRICS) + 2),
    ]
    for tool in tools:
        overall = tool["metrics"]["all"]
        threshold = tool["threshold"]
        thr = (f"{threshold:.3g}" if threshold is not None
               else f"E≤{tool['details'].get('evalue', '?')}")
        lines.append(
            f"| {tool['name']} | " + " | ".join(_fmt(overall[m]) for m in METRICS)
            + f" | {tool['seconds_per_query']:.4f} | {thr} |"
        )
    lines += ["", "By family size (members in the database): AP / sensitivity to the first FP",
              "", "| tool | " + " | ".join(f"{b} (n={tools[0]['metrics'][b]['families']})"
                                          if tools else b for b in SIZE_BUCKETS) + " |",
              "|---|" + "---:|" * len(SIZE_BUCKETS)]
    for tool in tools:
        cells = [f"{_fmt(tool['metrics'][b]['ap'])} / {_fmt(tool['metrics'][b]['sens_first_fp'])}"
                 for b in SIZE_BUCKETS]
        lines.append(f"| {tool['name']} | " + " | ".join(cells) + " |")
    lines += ["", "Seconds per query are wall time on this machine "
              f"({report.get('machine', '')}) with each tool's threads; stage times:", ""]
    for tool in tools:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in tool["seconds"].items())
        lines.append(f"- {tool['name']}: {stages} ({tool['threads']} threads)")
    return "\n".join(lines) + "\n"


def write_report(report: dict, *, json_path: str | Path | None, markdown_path: str | Path | None
                 ) -> None:
    """Write the JSON document and/or the markdown text, atomically."""
    if json_path:
        with atomic_write(json_path) as handle:
            json.dump(report, handle, indent=1, default=str)
            handle.write("\n")
    if markdown_path:
        with atomic_write(markdown_path) as handle:
            handle.write(markdown(report))
