"""Reading and writing sequence files, with errors that name the file and line.

FASTA is parsed here rather than with ``Bio.SeqIO`` because Biopython's parsers do not report
line numbers, and a user with a 60,000-record file needs to know *where* the bad line is.
Writing goes through :func:`atomic_write`, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .errors import InputError

log = logging.getLogger(__name__)

#: Residues accepted in input: nucleotides and IUPAC ambiguity codes (plus I, as RiNALMo has it).
RESIDUES = frozenset("ACGUTRYKMSWBDHVNI")
GAP_CHARACTERS = "-."
_UMASK = os.umask(0)
os.umask(_UMASK)
_INVALID = re.compile(r"[^ACGUTRYKMSWBDHVNI]", re.IGNORECASE)
# Rfam-style accessions (RF00005 CL00001), or the project's simulated ones (SIMF00001 SIMC0001)
_LABEL_DESCRIPTION = re.compile(r"^([A-Z]{2,5}\d{4,})\s+([A-Z]{2,5}\d{4,}|NA)\b")


@dataclass
class SequenceRecord:
    """One sequence with what is known about it.

    Attributes:
        id: identifier (first word of the FASTA header).
        sequence: uppercase RNA (T written as U), gaps removed.
        description: rest of the header line.
        family: Rfam family accession, when known.
        clan: Rfam clan accession, when known.
        source: file and line the record came from (``path:line``).
    """

    id: str
    sequence: str
    description: str = ""
    family: str = ""
    clan: str = ""
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-1 of the normalised sequence: equal for equal sequences, whatever their ids."""
        return sequence_hash(self.sequence)


def normalise_sequence(sequence: str) -> str:
    """Uppercase, T→U, whitespace and gap characters removed."""
    cleaned = "".join(sequence.split()).upper().replace("T", "U")
    return cleaned.translate({ord(c): None for c in GAP_CHARACTERS})


def sequence_hash(sequence: str) -> str:
    """SHA-1 hex digest of :func:`normalise_sequence` of ``sequence``."""
    return hashlib.sha1(normalise_sequence(sequence).encode("ascii")).hexdigest()


def labels_from_description(description: str) -> tuple[str, str]:
    """Family and clan from a header of the form ``RFxxxxx CLxxxxx|NA ...`` (else empty).

    Any accession-like pair of words (2–5 capitals and 4+ digits) is accepted, so labelled
    simulated families (``SIMF00001 SIMC0001``) read back the same way.
    """
    match = _LABEL_DESCRIPTION.match(description)
    if not match:
        return "", ""
    family, clan = match.groups()
    return family, "" if clan == "NA" else clan


def iter_fasta(path: str | Path) -> Iterator[SequenceRecord]:
    """Yield validated records of a FASTA file, labels taken from Rfam-style descriptions.

    Raises:
        InputError: missing or empty file, text before the first header, an empty id or
            sequence, or an invalid residue; the message names the file and line.
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"{path}: cannot read FASTA file ({error.strerror})") from None
    with handle:
        header: tuple[str, str, int] | None = None
        chunks: list[str] = []
        seen_anything = False

        def finish() -> SequenceRecord:
            assert header is not None
            record_id, description, line_no = header
            sequence = normalise_sequence("".join(chunks))
            if not sequence:
                raise InputError(f"{path}:{line_no}: record {record_id!r} has no sequence")
            family, clan = labels_from_description(description)
            return SequenceRecord(
                id=record_id,
                sequence=sequence,
                description=description,
                family=family,
                clan=clan,
                source=f"{path}:{line_no}",
            )

        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            seen_anything = True
            if text.startswith(">"):
                if header is not None:
                    yield finish()
                words = text[1:].split(maxsplit=1)
                if not words:
                    raise InputError(f"{path}:{line_no}: FASTA header without an identifier")
                header = (words[0], words[1] if len(words) > 1 else "", line_no)
                chunks = []
            elif header is None:
                raise InputError(
                    f"{path}:{line_no}: not a FASTA file (expected a '>' header line, "
                    f"found {text[:40]!r})"
                )
            else:
                body = "".join(text.split()).translate({ord(c): None for c in GAP_CHARACTERS})
                bad = _INVALID.search(body)
                if bad:
                    raise InputError(
                        f"{path}:{line_no}: invalid residue {bad.group()!r} in record "
                        f"{header[0]!r} (expected nucleotides or IUPAC codes)"
                    )
                chunks.append(body)
        if header is not None:
            yield finish()
        elif not seen_anything:
            raise InputError(f"{path}: empty file (expected FASTA records)")


def read_fasta(paths: str | Path | Iterable[str | Path]) -> list[SequenceRecord]:
    """Read one or several FASTA files into a list with unique ids.

    A record repeated with the same id and the same sequence (as in Rfam, where one locus
    can seed two families of a clan) is kept once, with a warning. The same id with a
    different sequence is an error.

    Raises:
        InputError: as :func:`iter_fasta`, or conflicting duplicate ids.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records: dict[str, SequenceRecord] = {}
    repeats: list[SequenceRecord] = []
    for path in paths:
        for record in iter_fasta(path):
            first = records.get(record.id)
            if first is None:
                records[record.id] = record
            elif first.sequence == record.sequence:
                repeats.append(record)
            else:
                raise InputError(
                    f"{record.source}: duplicate id {record.id!r} with a different sequence "
                    f"(first at {first.source})"
                )
    if repeats:
        example = repeats[0]
        log.warning(
            "%d record(s) repeat an earlier id with an identical sequence and were kept once "
            "(first: %r at %s, already at %s)",
            len(repeats),
            example.id,
            example.source,
            records[example.id].source,
        )
    return list(records.values())


def read_labels(path: str | Path) -> dict[str, tuple[str, str]]:
    """Read a labels table: tab-separated ``id family clan`` (header line optional).

    Returns:
        id → (family, clan); ``NA`` or an empty cell becomes ``""``.

    Raises:
        InputError: unreadable file or a row with fewer than two columns.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read labels file ({error.strerror})") from None
    labels: dict[str, tuple[str, str]] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.rstrip("\n").split("\t")
        if line_no == 1 and cells[0].lower() == "id":
            continue
        if len(cells) < 2:
            raise InputError(
                f"{path}:{line_no}: expected tab-separated 'id family clan', found {line[:60]!r}"
            )
        family = "" if cells[1] in ("", "NA") else cells[1]
        clan = "" if len(cells) < 3 or cells[2] in ("", "NA") else cells[2]
        labels[cells[0]] = (family, clan)
    return labels


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp creates files readable by the owner only; give outputs the usual mode
        os.chmod(temporary, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, mode) as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, *, width: int = 80) -> None:
    """Write records as FASTA (``>id description``), atomically."""
    with atomic_write(path) as handle:
        for record in records:
            header = f"{record.id} {record.description}".rstrip()
            handle.write(f">{header}\n")
            for start in range(0, len(record.sequence), width):
                handle.write(record.sequence[start : start + width] + "\n")
