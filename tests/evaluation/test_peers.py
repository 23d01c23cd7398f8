"""The peers run as a user runs them: permissive E-value, both strands, ranked by bit score.

The parsers read what the installed tools write: every test here runs the real tool on a few
sequences (random ancestors, mutated copies, one copy reverse-complemented, random decoys).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from evaluation_helpers import synthetic_records

from rinalmo_search.evaluation.peers import (
    PEERS,
    SINGLE_CM,
    _write,
    blastn_command,
    parse_blast6,
    parse_nhmmer_tblout,
    run_peer,
)
from rinalmo_search.evaluation.protocol import ToolRun, score_run
from rinalmo_search.evaluation.split import RetrievalSet
from rinalmo_search.seqio import SequenceRecord
from rinalmo_search.simulate import mutate
from rinalmo_search.tools import run_tool

_PROGRAMS = {"blastn": "blastn", "nhmmer": "nhmmer", "mmseqs": "mmseqs", SINGLE_CM: "cmsearch"}
_COMPLEMENT = str.maketrans("ACGU", "UGCA")


def _reverse_complement(sequence: str) -> str:
    return sequence.translate(_COMPLEMENT)[::-1]


def _records(n_queries: int = 3, length: int = 240) -> tuple[list[SequenceRecord],
                                                              list[SequenceRecord]]:
    """Queries, and a database of: each query, two mutated copies (one reverse-complemented),
    and 20 random decoys."""
    rng = np.random.default_rng(7)
    queries, database = [], []
    for q in range(n_queries):
        ancestor = "".join(rng.choice(list("ACGU"), size=length))
        query = SequenceRecord(id=f"query{q}", sequence=ancestor)
        queries.append(query)
        database += [
            query,
            SequenceRecord(id=f"fwd{q}", sequence=mutate(ancestor, rng, rate=0.05)),
            SequenceRecord(id=f"rev{q}",
                           sequence=_reverse_complement(mutate(ancestor, rng, rate=0.05))),
        ]
    database += [SequenceRecord(id=f"decoy{d}",
                                sequence="".join(rng.choice(list("ACGU"), size=length)))
                 for d in range(20)]
    return queries, database


def _need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")


@pytest.mark.parametrize("name", PEERS)
def test_peer_finds_both_strands_ranked_by_bit_score(name: str, tmp_path: Path) -> None:
    _need(_PROGRAMS[name])
    queries, database = _records()
    run = run_peer(name, queries, database, threads=1, workdir=tmp_path)
    assert run.version and run.version != "not found"
    for query in queries:
        q = query.id[-1]
        hits = run.hits[query.id]
        targets = [target for target, _bits in hits]
        assert targets[0] == query.id  # the query itself scores highest
        # the reverse-complemented copy is found: both strands are searched
        assert {f"fwd{q}", f"rev{q}"} <= set(targets), (name, targets)
        bits = [b for _t, b in hits]
        assert bits == sorted(bits, reverse=True)  # ranked by bit score
        evalues = run.evalues[query.id]
        assert set(evalues) == set(targets)
        assert all(0 <= e <= 10 for e in evalues.values())
        assert evalues[f"fwd{q}"] < 1e-10 and evalues[f"rev{q}"] < 1e-10
        # E-values fall as bit scores rise (a swapped column would invert this)
        ordered = [evalues[t] for t in targets]
        assert ordered[0] <= ordered[-1]
        assert all(bits[i] > 0 for i in range(len(bits)))


def test_blast6_parser_reads_what_blastn_wrote(tmp_path: Path) -> None:
    _need("blastn")
    queries, database = _records(n_queries=1)
    _write(queries, tmp_path / "q.fa", "q")
    _write(database, tmp_path / "db.fa", "t")
    run_tool(["makeblastdb", "-dbtype", "nucl", "-in", str(tmp_path / "db.fa"),
              "-out", str(tmp_path / "db")])
    out = tmp_path / "out.tsv"
    run_tool(blastn_command(tmp_path / "q.fa", tmp_path / "db", out, evalue=10, max_hits=50,
                            threads=1))
    text = out.read_text()
    rows = parse_blast6(text)
    assert len(rows) == len(text.splitlines()) > 0
    # t2 is the reverse-complemented copy: blastn's own minus-strand row is parsed
    assert any(target == "t2" for _q, target, _b, _e in rows)
    query, target, bits, evalue = rows[0]
    assert (query, target) == ("q0", "t0")
    assert bits > 300 and evalue < 1e-50


def test_nhmmer_tblout_parser_reads_what_nhmmer_wrote(tmp_path: Path) -> None:
    _need("nhmmer")
    queries, database = _records(n_queries=1)
    _write(queries, tmp_path / "q.fa", "q")
    _write(database, tmp_path / "db.fa", "t")
    table = tmp_path / "out.tbl"
    run_tool(["nhmmer", "--qformat", "fasta", "--tblout", str(table), "--noali", "-E", "10",
              "--cpu", "1", "-o", "/dev/null", str(tmp_path / "q.fa"), str(tmp_path / "db.fa")])
    lines = [line for line in table.read_text().splitlines() if not line.startswith("#")]
    rows = parse_nhmmer_tblout(table.read_text())
    assert len(rows) == len(lines) > 0
    strands = {line.split()[11]: line.split()[0] for line in lines}
    assert strands.get("-") == "t2"  # the reverse-complemented copy, on the minus strand
    for (query, _target, bits, evalue), line in zip(rows, lines, strict=True):
        cells = line.split()
        assert query == "q0" == cells[2]
        assert (evalue, bits) == (float(cells[12]), float(cells[13]))


def test_single_cm_peer_ranks_by_bit_score(tmp_path: Path) -> None:
    for program in ("cmbuild", "cmcalibrate", "cmsearch"):
        _need(program)
    pytest.importorskip("RNA")
    queries, database = _records(n_queries=1, length=120)
    run = run_peer(SINGLE_CM, queries, database, threads=1, workdir=tmp_path)
    hits = run.hits["query0"]
    assert hits[0][0] == "query0"
    assert [b for _t, b in hits] == sorted((b for _t, b in hits), reverse=True)
    assert "rev0" in {t for t, _b in hits}  # both strands


def test_peer_metrics_rank_by_order_and_threshold_on_evalue() -> None:
    """AP and friends follow the bit-score order; precision/recall/F1 count only E ≤ 1e-3."""
    records = synthetic_records()
    sides = ("test", "validation", "train", "train")
    split = RetrievalSet(records, {r.family: sides[int(r.family[2:]) % 4] for r in records})
    queries = split.queries("test")
    decoy = next(r.id for r in split.records if split.family_split[r.family] == "train"
                 and not r.clan)
    hits, evalues = {}, {}
    for query in queries:
        mates = [r.id for r in split.records if r.family == query.family and r.id != query.id]
        # every mate ranked first, then a decoy; only the first mate at E <= 1e-3
        hits[query.id] = [(m, 100.0 - i) for i, m in enumerate(mates)] + [(decoy, 1.0)]
        evalues[query.id] = {m: (1e-6 if i == 0 else 0.5) for i, m in enumerate(mates)}
        evalues[query.id][decoy] = 5.0
    run = ToolRun("peer", hits, {"search": 1.0}, len(queries), 1, evalues=evalues,
                  max_evalue=1e-3)
    summary = score_run(run, queries, split)["all"]
    assert summary["ap"] == pytest.approx(1.0)  # ranked by order, not by E-value
    assert summary["sens_first_fp"] == pytest.approx(1.0)
    assert summary["precision"] == pytest.approx(1.0)  # only the first mate kept
    expected_recall = np.mean([
        np.mean([1 / (sum(r.family == q.family for r in split.records) - 1)
                 for q in queries if q.family == family])
        for family in sorted({q.family for q in queries})
    ])
    assert summary["recall"] == pytest.approx(expected_recall)
