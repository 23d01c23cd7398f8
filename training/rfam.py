"""Readers for Rfam release files: sequences with their family, and family/clan metadata.

Supported inputs (any mix; see :func:`load_rfam_dir` for the order in which a folder is read):

* Stockholm seed alignments: one ``Rfam.seed`` (optionally gzipped, all families) or one
  ``RFxxxxx.sto`` per family, read with the project's Stockholm parser
  (:func:`rinalmo_search.msa.stockholm.iter_stockholm`) for ``#=GF AC``, ``ID``, ``DE``,
  ``TP`` and ``CL``.
* FASTA: per-family ``RFxxxxx.fa[.gz]`` files (Rfam's ``fasta_files/``: the family is the file
  name), or one FASTA whose headers start ``RFxxxxx CLxxxxx|NA`` (our ``sequences.fasta``), or a
  FASTA of ``accession/start-end`` regions labelled through ``Rfam.full_region``.
* ``Rfam.full_region[.gz]``: tab-separated ``rfam_acc rfamseq_acc seq_start seq_end bit_score
  evalue cm_start cm_end truncated type``.
* ``Rfam.clanin``: a clan accession, then member family *names* (IDs), tab-separated.
* ``families.tsv`` (columns ``accession id ... clan``) or Rfam's ``database_files/family.txt[.gz]``
  (``rfam_acc``, ``rfam_id``, ..., no header) for names and descriptions.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rinalmo_search.errors import InputError
from rinalmo_search.msa.stockholm import iter_stockholm
from rinalmo_search.seqio import SequenceRecord, iter_fasta, normalise_sequence

log = logging.getLogger(__name__)

_FAMILY_ACC = re.compile(r"^RF\d{5}$")
_CLAN_ACC = re.compile(r"^CL\d{5}$")
_FAMILY_FILE = re.compile(r"^(RF\d{5})\.(?:fa|fasta|sto|stk|seed)(?:\.gz)?$")


@dataclass
class Family:
    """One Rfam family.

    Attributes:
        accession: ``RFxxxxx``.
        name: Rfam ID (e.g. ``tRNA``), empty when unknown.
        clan: ``CLxxxxx`` or empty for an unclanned family.
        description: one-line description.
        type: Rfam type string (e.g. ``Gene; tRNA;``).
    """

    accession: str
    name: str = ""
    clan: str = ""
    description: str = ""
    type: str = ""


@dataclass
class RfamData:
    """Sequences and family metadata read from one Rfam folder.

    Attributes:
        records: sequences with ``family`` set (and ``clan`` once :meth:`apply_clans` ran).
        families: accession → :class:`Family`.
        sources: the input files that were read (for checksums in the manifest).
    """

    records: list[SequenceRecord]
    families: dict[str, Family]
    sources: list[Path] = field(default_factory=list)

    def apply_clans(self) -> None:
        """Copy each family's clan onto its records."""
        for record in self.records:
            family = self.families.get(record.family)
            record.clan = family.clan if family else ""


def open_text(path: str | Path) -> IO[str]:
    """Open a text file, transparently gunzipping ``*.gz``; Rfam files are not all UTF-8.

    Raises:
        InputError: the file cannot be opened.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return path.open("r", encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def _set_clan(family: Family, clan: str, origin: str) -> None:
    if not clan or clan == family.clan:
        return
    if family.clan:
        log.warning(
            "%s: family %s is in clan %s here but %s elsewhere; kept %s",
            origin, family.accession, clan, family.clan, family.clan,
        )
        return
    family.clan = clan


def read_seed_records(
    path: str | Path, families: dict[str, Family] | None = None
) -> Iterator[SequenceRecord]:
    """Yield the ungapped sequences of every alignment in a Stockholm file (``Rfam.seed`` or one
    family's seed), labelled with the alignment's ``#=GF AC``.

    Arguments:
        path: the Stockholm file (``.gz`` accepted).
        families: if given, filled with each alignment's accession, ID, description, type, clan.

    Raises:
        InputError: not Stockholm, or an alignment without ``#=GF AC`` (and no ``RFxxxxx`` file
            name to take it from).
    """
    path = Path(path)
    name_match = _FAMILY_FILE.match(path.name)
    for alignment in iter_stockholm(path):
        accession = alignment.gf_text("AC").split(";")[0].strip()
        if not accession and name_match:
            accession = name_match.group(1)
        if not _FAMILY_ACC.match(accession):
            raise InputError(
                f"{path}: Stockholm alignment without a family accession (expected "
                f"'#=GF AC RFxxxxx', found {accession!r})"
            )
        if families is not None:
            family = families.setdefault(accession, Family(accession))
            family.name = family.name or alignment.gf_text("ID")
            family.description = family.description or alignment.gf_text("DE")
            family.type = family.type or alignment.gf_text("TP")
            _set_clan(family, alignment.gf_text("CL").strip(), str(path))
        for name, row in zip(alignment.names, alignment.rows, strict=True):
            residues = normalise_sequence(row)
            if residues:
                yield SequenceRecord(
                    id=name, sequence=residues, family=accession, source=f"{path}:{accession}"
                )


def read_family_fasta(path: str | Path) -> Iterator[SequenceRecord]:
    """Yield the records of a per-family FASTA (``RFxxxxx.fa[.gz]``), family from the file name.

    Raises:
        InputError: the file name does not start with a family accession, or bad FASTA.
    """
    path = Path(path)
    match = _FAMILY_FILE.match(path.name)
    if not match:
        raise InputError(f"{path}: expected a per-family file named RFxxxxx.fa[.gz]")
    accession = match.group(1)
    for record in iter_fasta(path):
        record.family = accession
        record.clan = ""
        yield record


def read_full_region(path: str | Path) -> dict[str, str]:
    """Read ``Rfam.full_region``: region id ``accession/start-end`` → family accession.

    Raises:
        InputError: a row with fewer than four columns or a bad family accession.
    """
    path = Path(path)
    regions: dict[str, str] = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) < 4 or not _FAMILY_ACC.match(cells[0]):
                raise InputError(
                    f"{path}:{line_no}: expected 'rfam_acc rfamseq_acc seq_start seq_end ...', "
                    f"found {line[:60]!r}"
                )
            regions[f"{cells[1]}/{cells[2]}-{cells[3]}"] = cells[0]
    return regions


def read_labelled_fasta(
    path: str | Path, regions: dict[str, str] | None = None
) -> Iterator[SequenceRecord]:
    """Yield records of a FASTA labelled by ``RFxxxxx CLxxxxx|NA`` headers or by region ids.

    Arguments:
        path: the FASTA file.
        regions: region id → family (from :func:`read_full_region`), used when a header
            carries no label; records labelled by neither are skipped with one warning.
    """
    path = Path(path)
    unlabelled = 0
    for record in iter_fasta(path):
        if not record.family and regions:
            record.family = regions.get(record.id, "")
        if not record.family:
            # Rfam.fasta-style headers: "RF00001;5S_rRNA;X01556.1/3-118"
            first = record.id.split(";")[0]
            if _FAMILY_ACC.match(first):
                record.family = first
        if record.family:
            yield record
        else:
            unlabelled += 1
    if unlabelled:
        log.warning("%s: %d records without a family label were skipped", path, unlabelled)


def read_clanin(path: str | Path) -> dict[str, list[str]]:
    """Read ``Rfam.clanin``: clan accession → member family names.

    Raises:
        InputError: a row whose first cell is not a clan accession.
    """
    path = Path(path)
    clans: dict[str, list[str]] = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            cells = [cell for cell in line.strip().split("\t") if cell]
            if not cells or cells[0].startswith("#"):
                continue
            if not _CLAN_ACC.match(cells[0]):
                raise InputError(
                    f"{path}:{line_no}: expected a clan accession CLxxxxx first, "
                    f"found {cells[0]!r}"
                )
            clans[cells[0]] = cells[1:]
    return clans


def read_families_table(path: str | Path, families: dict[str, Family]) -> None:
    """Fill ``families`` from our ``families.tsv`` (header with ``accession``) or Rfam's
    ``family.txt[.gz]`` (no header: ``rfam_acc rfam_id auto_wiki description ...``).

    Raises:
        InputError: a row without a family accession in its first column.
    """
    path = Path(path)
    with open_text(path) as handle:
        header: list[str] | None = None
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if line_no == 1 and cells[0].lower() in ("accession", "rfam_acc"):
                header = [cell.lower() for cell in cells]
                continue
            if not _FAMILY_ACC.match(cells[0]):
                raise InputError(
                    f"{path}:{line_no}: expected a family accession RFxxxxx first, "
                    f"found {cells[0][:40]!r}"
                )
            family = families.setdefault(cells[0], Family(cells[0]))
            if header is not None:
                row = dict(zip(header, cells, strict=False))
                family.name = family.name or row.get("id", "")
                family.description = family.description or row.get("description", "")
                family.type = family.type or row.get("type", "")
                clan = row.get("clan", "")
                _set_clan(family, "" if clan in ("", "NA") else clan, f"{path}:{line_no}")
            else:  # Rfam family.txt: rfam_acc, rfam_id, auto_wiki, description, ...
                family.name = family.name or (cells[1] if len(cells) > 1 else "")
                family.description = family.description or (cells[3] if len(cells) > 3 else "")


def apply_clanin(clans: dict[str, list[str]], families: dict[str, Family], origin: str) -> None:
    """Set family clans from clan membership by family *name* (as ``Rfam.clanin`` has it).

    Names that match no known family are ignored with one summary warning (a clanin file of
    another release names families that this folder may lack).
    """
    by_name = {family.name: family for family in families.values() if family.name}
    missing = 0
    for clan, names in clans.items():
        for name in names:
            family = by_name.get(name)
            if family is None:
                missing += 1
            else:
                _set_clan(family, clan, origin)
    if missing:
        log.info("%s: %d clan members are not among the families read", origin, missing)


def _first(folder: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def load_rfam_dir(folder: str | Path, *, source: str = "auto") -> RfamData:
    """Read sequences and family metadata from an Rfam folder.

    Arguments:
        folder: a folder holding release files (as downloaded by ``data download-rfam``) or
            the project's shared seed folder.
        source: which sequences to read: ``"seed"`` (``seeds/*.sto``, ``*.sto`` or
            ``Rfam.seed[.gz]``), ``"full"`` (``fasta_files/RF*.fa[.gz]``, or ``Rfam.fa[sta][.gz]``
            with ``Rfam.full_region``), ``"fasta"`` (``sequences.fasta`` with labelled headers),
            or ``"auto"``: full if present, else seed, else fasta.

    Returns:
        The records (family and clan set) and families; every family with at least one record
        is in ``families``.

    Raises:
        InputError: the folder has no readable sequences of the requested kind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Rfam folder not found: {folder} (expected a directory)")
    families: dict[str, Family] = {}
    sources: list[Path] = []
    records: list[SequenceRecord] = []

    seed_files = sorted((folder / "seeds").glob("RF*.sto")) + sorted(folder.glob("RF*.sto"))
    seed_file = _first(folder, ["Rfam.seed", "Rfam.seed.gz"])
    family_fastas = sorted((folder / "fasta_files").glob("RF*.fa*"))
    big_fasta = _first(folder, ["Rfam.fa", "Rfam.fasta", "Rfam.fa.gz", "Rfam.fasta.gz"])
    full_region = _first(folder, ["Rfam.full_region", "Rfam.full_region.gz"])
    labelled = _first(folder, ["sequences.fasta", "sequences.fa"])

    have = {
        "full": bool(family_fastas or big_fasta),
        "seed": bool(seed_files or seed_file),
        "fasta": labelled is not None,
    }
    if source == "auto":
        source = next((kind for kind in ("full", "seed", "fasta") if have[kind]), "none")
    elif source not in have:
        raise InputError(f"Invalid source {source!r} (expected auto, seed, full or fasta)")
    if source == "none" or not have[source]:
        raise InputError(
            f"{folder}: no {'' if source == 'none' else source + ' '}sequence files found "
            "(expected seeds/RF*.sto, Rfam.seed[.gz], fasta_files/RF*.fa[.gz], "
            "Rfam.fa[sta][.gz] with Rfam.full_region, or sequences.fasta)"
        )

    # metadata first, so seed CL lines and tables agree before clanin fills the gaps
    table = _first(folder, ["families.tsv", "family.txt", "family.txt.gz"])
    if table is None:
        table = _first(folder / "database_files", ["family.txt", "family.txt.gz"])
    if table is not None:
        read_families_table(table, families)
        sources.append(table)

    if source == "seed":
        from tqdm import tqdm

        files = seed_files or ([seed_file] if seed_file is not None else [])
        for path in tqdm(files, desc="reading seeds", unit="file", disable=len(files) < 50):
            records.extend(read_seed_records(path, families))
        sources.extend(files)
    elif source == "full":
        if family_fastas:
            for path in family_fastas:
                records.extend(read_family_fasta(path))
            sources.extend(family_fastas)
        else:
            assert big_fasta is not None
            regions = read_full_region(full_region) if full_region else None
            records.extend(read_labelled_fasta(big_fasta, regions))
            sources.append(big_fasta)
            if full_region:
                sources.append(full_region)
        if seed_file is not None:  # seed headers carry the clans and names
            for _ in read_seed_records(seed_file, families):
                pass
            sources.append(seed_file)
    else:
        assert labelled is not None
        regions = read_full_region(full_region) if full_region else None
        for record in read_labelled_fasta(labelled, regions):
            family = families.setdefault(record.family, Family(record.family))
            _set_clan(family, record.clan, str(labelled))
            records.append(record)
        sources.append(labelled)

    clanin = _first(folder, ["Rfam.clanin"])
    if clanin is not None:
        apply_clanin(read_clanin(clanin), families, str(clanin))
        sources.append(clanin)
    for record in records:
        families.setdefault(record.family, Family(record.family))
    data = RfamData(records=records, families=families, sources=sources)
    data.apply_clans()
    if not records:
        raise InputError(f"{folder}: the {source} files hold no sequences")
    log.info(
        "%s: read %d sequences of %d families (%s)", folder, len(records),
        len({r.family for r in records}), source,
    )
    return data
