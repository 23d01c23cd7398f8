"""Dataset preparation: length filter, per-family MMseqs2 de-duplication, clan-grouped split.

The split is written to a folder that every later step reads (features, training, evaluation):

* ``sequences.fasta``: kept sequences, header ``>id RFxxxxx CLxxxxx|NA name split=SPLIT``;
* ``families.tsv``: one row per family with its clan, split and counts at each step;
* ``split.json``: the family accessions of each split, with the seed and fractions;
* ``manifest.json``: parameters, tool versions, input and output checksums, counts, timings.

Clans are the unit of the split: all families of a clan (or one unclanned family) go to one
side, so validation and test never hold a family whose clan-mates were trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rinalmo_search.errors import ConfigError, InputError, ToolError
from rinalmo_search.seqio import SequenceRecord, atomic_write, read_fasta, write_fasta
from rinalmo_search.tools import run_tool, tool_version

from .rfam import Family, RfamData, load_rfam_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_FORMAT = 1


@dataclass
class PrepareOptions:
    """Parameters of :func:`prepare_dataset` (all recorded in the manifest).

    Attributes:
        min_length: shortest sequence kept (nt).
        max_length: longest sequence kept (nt).
        dedup: ``"mmseqs"`` (cluster, keep one per cluster and family), ``"exact"`` (drop
            identical sequences within a family only) or ``"none"``.
        min_seq_id: MMseqs2 ``--min-seq-id``.
        coverage: MMseqs2 ``-c`` (with ``--cov-mode 0``: both sequences).
        kmer_size: MMseqs2 prefilter ``-k``. MMseqs2's nucleotide default (15) allocates an
            index of ~8 GB whatever the input size (30 s for 200 sequences here); 11 gave the
            same clusters in 1.6 s. 0 = MMseqs2's default.
        min_family_size: families with fewer kept sequences are dropped (a family needs two
            sequences to give a positive pair).
        fractions: train/validation/test shares of families.
        seed: seed of the split.
        threads: MMseqs2 threads.
        source: which Rfam sequences to read (see :func:`load_rfam_dir`).
        families: restrict to these family accessions (for small test sets); empty = all.
    """

    min_length: int = 50
    max_length: int = 1024
    dedup: str = "mmseqs"
    min_seq_id: float = 0.9
    coverage: float = 0.8
    kmer_size: int = 11
    min_family_size: int = 2
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    threads: int = 1
    source: str = "auto"
    families: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raises :class:`ConfigError` on inconsistent values, naming the value."""
        if not 1 <= self.min_length <= self.max_length:
            raise ConfigError(
                f"Invalid length range: {self.min_length}..{self.max_length} "
                "(expected 1 <= min_length <= max_length)"
            )
        if self.dedup not in ("mmseqs", "exact", "none"):
            raise ConfigError(
                f"Invalid 'dedup' value: {self.dedup!r} (expected mmseqs, exact or none)"
            )
        if not 0 < self.min_seq_id <= 1 or not 0 < self.coverage <= 1:
            raise ConfigError(
                f"Invalid identity/coverage: {self.min_seq_id}/{self.coverage} (expected (0, 1])"
            )
        shares = self.fractions
        if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1) > 1e-6:
            raise ConfigError(
                f"Invalid split fractions: {self.fractions} (expected three shares summing to 1)"
            )
        if self.min_family_size < 1:
            raise ConfigError(
                f"Invalid 'min_family_size' value: {self.min_family_size} (expected >= 1)"
            )


@dataclass
class Split:
    """A prepared split read back from disk.

    Attributes:
        folder: the split folder.
        records: kept sequences by split name.
        families: accession → :class:`Family`.
        family_split: accession → split name.
        manifest: the parsed ``manifest.json``.
    """

    folder: Path
    records: dict[str, list[SequenceRecord]]
    families: dict[str, Family]
    family_split: dict[str, str]
    manifest: dict

    @property
    def fingerprint(self) -> str:
        """SHA-256 of ``split.json`` and ``sequences.fasta``: identifies this split."""
        return str(self.manifest.get("fingerprint", ""))


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mmseqs_version(executable: str = "mmseqs") -> str:
    """The MMseqs2 version string.

    Raises:
        ToolError: ``mmseqs`` is not on PATH.
    """
    path = shutil.which(executable)
    if path is None:
        raise ToolError(
            f"MMseqs2 not found ({executable!r} is not on PATH); install it (e.g. "
            "'apt-get install mmseqs2' or 'conda install -c bioconda mmseqs2') or use --dedup exact"
        )
    return tool_version(path)


def _dedup_exact(records: list[SequenceRecord]) -> list[SequenceRecord]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for record in records:
        key = (record.family, record.sequence)
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def _dedup_mmseqs(
    records: list[SequenceRecord], *, min_seq_id: float, coverage: float, threads: int,
    kmer_size: int = 0,
) -> list[SequenceRecord]:
    """Cluster all sequences at once, then keep one sequence per (cluster, family).

    One MMseqs2 run over everything is ~100x faster than one run per family (process start-up
    dominates small families). Within a cluster, members are similar to the representative;
    per family we keep the representative if it belongs to the family, else the family's first
    member in input order, so no family loses all of a cluster to another family.
    """
    executable = shutil.which("mmseqs")
    if executable is None:
        mmseqs_version()  # raises the ToolError with advice
    assert executable is not None
    with tempfile.TemporaryDirectory(prefix="rinalmo-mmseqs-") as scratch:
        work = Path(scratch)
        fasta = work / "input.fasta"
        with fasta.open("w") as handle:
            for index, record in enumerate(records):
                handle.write(f">s{index}\n{record.sequence}\n")
        command = [
            executable, "easy-cluster", str(fasta), str(work / "clu"), str(work / "tmp"),
            "--min-seq-id", str(min_seq_id), "-c", str(coverage), "--cov-mode", "0",
            "--threads", str(threads), "-v", "1",
        ]
        if kmer_size:
            command += ["-k", str(kmer_size)]
        log.info("running %s", " ".join(command))
        run_tool(command)
        clusters: dict[int, list[int]] = defaultdict(list)
        with (work / "clu_cluster.tsv").open() as handle:
            for line in handle:
                rep_id, member_id = line.split()
                clusters[int(rep_id[1:])].append(int(member_id[1:]))
    keep: set[int] = set()
    for representative, members in clusters.items():
        by_family: dict[str, list[int]] = defaultdict(list)
        for member in members:
            by_family[records[member].family].append(member)
        for family, indices in by_family.items():
            if records[representative].family == family:
                keep.add(representative)
            else:
                keep.add(min(indices))
    if len(keep) == 0 and records:
        raise ToolError("mmseqs easy-cluster returned no clusters", command=[executable])
    return [record for index, record in enumerate(records) if index in keep]


def split_families(
    families: dict[str, Family], eligible: Sequence[str], *, fractions: Sequence[float], seed: int
) -> dict[str, str]:
    """Assign each eligible family to a split, grouping families by clan.

    Groups (a clan's eligible families, or one unclanned family) are shuffled with
    ``numpy.random.default_rng(seed)`` in sorted order; groups of several families come first
    (a stable sort keeps their shuffled order), then each goes to the split that is furthest
    below its target share of families. The result depends only on the family list,
    their clans, the fractions and the seed.

    Returns:
        family accession → ``"train"``, ``"validation"`` or ``"test"``.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for accession in sorted(eligible):
        clan = families[accession].clan
        groups[clan or accession].append(accession)
    keys = sorted(groups)
    order = [keys[int(i)] for i in np.random.default_rng(seed).permutation(len(keys))]
    # clans first: placed after the singletons have filled validation and test, every clan
    # would land in train and the held-out splits would hold no clan at all
    order.sort(key=lambda key: len(groups[key]) == 1)
    counts = [0, 0, 0]
    assignment: dict[str, str] = {}
    for key in order:
        members = groups[key]
        total = sum(counts) + len(members)
        deficits = [fractions[i] * total - counts[i] for i in range(3)]
        chosen = int(np.argmax(deficits))
        counts[chosen] += len(members)
        for accession in members:
            assignment[accession] = SPLITS[chosen]
    return assignment


def _unique_ids(records: list[SequenceRecord]) -> None:
    """Make ids unique: one locus can seed two families of a clan (``id|RFxxxxx`` then)."""
    count: dict[str, int] = defaultdict(int)
    for record in records:
        count[record.id] += 1
    for record in records:
        if count[record.id] > 1:
            record.id = f"{record.id}|{record.family}"


def prepare_dataset(rfam_dir: str | Path, out_dir: str | Path, options: PrepareOptions) -> dict:
    """Read an Rfam folder, filter, de-duplicate, split by clan, and write the split folder.

    Arguments:
        rfam_dir: Rfam release files or the shared seed folder (see :func:`load_rfam_dir`).
        out_dir: the split folder to write (created; existing split files are replaced).
        options: parameters.

    Returns:
        The manifest (also written to ``manifest.json``).

    Raises:
        InputError: unreadable inputs or nothing left after filtering.
        ToolError: MMseqs2 missing or failing.
        ConfigError: invalid options.
    """
    options.validate()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data: RfamData = load_rfam_dir(rfam_dir, source=options.source)
    timings["read_s"] = time.perf_counter() - start
    records = data.records
    if options.families:
        wanted = set(options.families)
        unknown = sorted(wanted - {record.family for record in records})
        if unknown:
            raise InputError(
                f"{rfam_dir}: requested families not found: {', '.join(unknown[:10])}"
            )
        records = [record for record in records if record.family in wanted]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"read": 0, "length_ok": 0, "kept": 0})
    for record in records:
        counts[record.family]["read"] += 1
    records = [r for r in records if options.min_length <= len(r.sequence) <= options.max_length]
    for record in records:
        counts[record.family]["length_ok"] += 1
    if not records:
        raise InputError(
            f"{rfam_dir}: no sequence within {options.min_length}..{options.max_length} nt"
        )

    start = time.perf_counter()
    tool_versions: dict[str, str] = {}
    records = _dedup_exact(records)
    if options.dedup == "mmseqs":
        tool_versions["mmseqs"] = mmseqs_version()
        records = _dedup_mmseqs(
            records, min_seq_id=options.min_seq_id, coverage=options.coverage,
            threads=options.threads, kmer_size=options.kmer_size,
        )
    timings["dedup_s"] = time.perf_counter() - start
    for record in records:
        counts[record.family]["kept"] += 1

    eligible = sorted(f for f, c in counts.items() if c["kept"] >= options.min_family_size)
    if not eligible:
        raise InputError(
            f"{rfam_dir}: no family keeps {options.min_family_size} or more sequences after "
            "filtering and de-duplication"
        )
    assignment = split_families(
        data.families, eligible, fractions=options.fractions, seed=options.seed
    )
    kept = sorted(
        (r for r in records if r.family in assignment), key=lambda r: (r.family, r.id, r.sequence)
    )
    _unique_ids(kept)
    for record in kept:
        family = data.families[record.family]
        record.clan = family.clan
        record.description = (
            f"{record.family} {family.clan or 'NA'} {family.name or '-'} "
            f"split={assignment[record.family]}"
        )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_fasta(kept, out / "sequences.fasta")
    with atomic_write(out / "families.tsv") as handle:
        handle.write("accession\tid\tclan\tsplit\tn_read\tn_length_ok\tn_kept\tdescription\n")
        for accession in sorted(counts):
            family = data.families[accession]
            c = counts[accession]
            handle.write(
                f"{accession}\t{family.name or '-'}\t{family.clan or 'NA'}\t"
                f"{assignment.get(accession, 'dropped')}\t{c['read']}\t{c['length_ok']}\t"
                f"{c['kept']}\t{family.description}\n"
            )
    split_doc: dict[str, Any] = {
        "format": SPLIT_FORMAT,
        "seed": options.seed,
        "fractions": list(options.fractions),
        **{name: sorted(a for a, s in assignment.items() if s == name) for name in SPLITS},
    }
    with atomic_write(out / "split.json") as handle:
        json.dump(split_doc, handle, indent=1)
        handle.write("\n")

    outputs = {
        name: file_sha256(out / name)
        for name in ("sequences.fasta", "families.tsv", "split.json")
    }
    fingerprint = hashlib.sha256(
        (outputs["split.json"] + outputs["sequences.fasta"]).encode()
    ).hexdigest()
    by_split = {
        name: {
            "families": len(split_doc[name]),
            "clans": len({data.families[a].clan for a in split_doc[name] if data.families[a].clan}),
            "sequences": sum(1 for r in kept if assignment[r.family] == name),
        }
        for name in SPLITS
    }
    inputs = sorted(set(data.sources))
    manifest = {
        "format": SPLIT_FORMAT,
        "rfam_dir": str(Path(rfam_dir).resolve()),
        "options": asdict(options),
        "tool_versions": tool_versions,
        "inputs": {_relative(path, Path(rfam_dir)): file_sha256(path) for path in inputs},
        "outputs": outputs,
        "fingerprint": fingerprint,
        "counts": {
            "families_read": len(counts),
            "sequences_read": sum(c["read"] for c in counts.values()),
            "sequences_length_ok": sum(c["length_ok"] for c in counts.values()),
            "sequences_after_dedup": len(records),
            "families_kept": len(eligible),
            "sequences_kept": len(kept),
            "by_split": by_split,
        },
        "timings": {key: round(value, 3) for key, value in timings.items()},
    }
    with atomic_write(out / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    log.info(
        "split written to %s: %s", out,
        ", ".join(f"{n} {by_split[n]['families']} families/{by_split[n]['sequences']} seqs"
                  for n in SPLITS),
    )
    return manifest


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def load_split(folder: str | Path) -> Split:
    """Read a split folder written by :func:`prepare_dataset`.

    Raises:
        InputError: missing files, or a split file that does not match its manifest checksum.
    """
    folder = Path(folder)
    for name in ("sequences.fasta", "families.tsv", "split.json", "manifest.json"):
        if not (folder / name).is_file():
            raise InputError(
                f"{folder}: not a split folder (missing {name}; run 'rinalmo-search data prepare')"
            )
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = manifest.get("outputs", {}).get("split.json")
    found = file_sha256(folder / "split.json")
    if expected and expected != found:
        raise InputError(
            f"{folder}/split.json: checksum {found[:12]} does not match the manifest "
            f"({expected[:12]}); the split was edited after 'data prepare'"
        )
    split_doc = json.loads((folder / "split.json").read_text())
    family_split = {acc: name for name in SPLITS for acc in split_doc.get(name, [])}
    families: dict[str, Family] = {}
    with (folder / "families.tsv").open() as handle:
        next(handle)
        for line in handle:
            cells = line.rstrip("\n").split("\t")
            families[cells[0]] = Family(
                accession=cells[0], name="" if cells[1] == "-" else cells[1],
                clan="" if cells[2] == "NA" else cells[2],
                description=cells[7] if len(cells) > 7 else "",
            )
    records: dict[str, list[SequenceRecord]] = {name: [] for name in SPLITS}
    for record in read_fasta(folder / "sequences.fasta"):
        split = family_split.get(record.family)
        if split is None:
            raise InputError(
                f"{record.source}: family {record.family!r} of {record.id!r} is in no split"
            )
        records[split].append(record)
    return Split(folder, records, families, family_split, manifest)
