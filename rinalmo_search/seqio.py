"""Reading and writing sequence files, with errors that name the file and line.

FASTA is parsed here rather than with ``Bio.SeqIO`` because Biopython's parsers do not report
line numbers, and a user with a 60,000-record file needs to know *where* the bad line is.
Every text input is read by :func:`read_lines`: plain or gzip-compressed (recognised by its
magic bytes, whatever the name), ``-`` for standard input, a UTF-8 byte-order mark ignored, and
bytes that are not UTF-8 an error naming the file and line (never replaced, so distinct ids
cannot collide). Writing goes through :func:`atomic_write` (or :func:`open_output`, which also
takes ``-`` for standard output), so an interrupted run never leaves half a file;
:func:`check_output` finds an unwritable output before the long work starts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from .errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Residues accepted in input: nucleotides and IUPAC ambiguity codes (plus I, as RiNALMo has it).
RESIDUES = frozenset("ACGUTRYKMSWBDHVNI")
GAP_CHARACTERS = "-."
#: The path that means standard input (for inputs) or standard output (for ``open_output``).
STDIO = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
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


def display_name(path: str | Path) -> str:
    """How messages name an input: ``<stdin>`` for ``-``, else the path as given."""
    return "<stdin>" if str(path) == STDIO else str(path)


@contextmanager
def _open_binary(path: str | Path, what: str) -> Iterator[BinaryIO]:
    """``path`` (``-``: standard input) opened for reading bytes, gunzipped if compressed."""
    if str(path) == STDIO:
        raw: BinaryIO = sys.stdin.buffer
        close = False
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            raise InputError(f"{path}: cannot read {what} ({error.strerror})") from None
        close = True
    try:
        # peek needs a buffered reader; stdin.buffer and open(..., 'rb') already are
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type,type-var]
        try:
            compressed = buffered.peek(2)[:2] == _GZIP_MAGIC
        except OSError as error:  # e.g. a folder
            raise InputError(f"{path}: cannot read {what} ({error.strerror})") from None
        if compressed:
            with gzip.GzipFile(fileobj=buffered, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield buffered
    finally:
        if close:
            raw.close()


def read_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a text input, line ends removed.

    Arguments:
        path: a file (plain or gzip-compressed) or ``-`` for standard input.
        what: what the file should be, for messages (``"FASTA file"``).

    Raises:
        InputError: unreadable or truncated file, or a line that is not UTF-8 (the message
            names the file, line and byte).
    """
    name = display_name(path)
    with _open_binary(path, what) as handle:
        line_no = 0
        try:
            for line_no, raw in enumerate(handle, start=1):
                if line_no == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    byte = raw[error.start : error.start + 1].hex()
                    raise InputError(
                        f"{name}:{line_no}: not UTF-8 text (byte 0x{byte} at column "
                        f"{error.start + 1}); is this a {what}? Convert other encodings first, "
                        "e.g. 'iconv -f latin1 -t utf-8'"
                    ) from None
                yield line_no, text.rstrip("\r\n")
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(
                f"{name}:{line_no + 1}: damaged or truncated gzip data ({error})"
            ) from None
        except OSError as error:
            raise InputError(f"{name}: cannot read {what} ({error.strerror or error})") from None


#: Checks one sequence line of a record (file name, line, record id, text without whitespace)
#: and returns what to keep of it.
LineCheck = Callable[[str, int, str, str], str]


def _fasta_entries(
    path: str | Path, check: LineCheck
) -> Iterator[tuple[str, str, int, list[str]]]:
    """``(id, description, header line, [checked sequence lines])`` of each FASTA record."""
    name = display_name(path)
    header: tuple[str, str, int] | None = None
    body: list[str] = []
    seen_anything = False
    for line_no, line in read_lines(path, "FASTA file"):
        text = line.strip()
        if not text:
            continue
        seen_anything = True
        if text.startswith(">"):
            if header is not None:
                yield (*header, body)
            words = text[1:].split(maxsplit=1)
            if not words:
                raise InputError(f"{name}:{line_no}: FASTA header without an identifier")
            header = (words[0], words[1] if len(words) > 1 else "", line_no)
            body = []
        elif header is None:
            raise InputError(
                f"{name}:{line_no}: not a FASTA file (expected a '>' header line, "
                f"found {text[:40]!r})"
            )
        else:
            body.append(check(name, line_no, header[0], "".join(text.split())))
    if header is not None:
        yield (*header, body)
    elif not seen_anything:
        raise InputError(f"{name}: empty file (expected FASTA records)")


def iter_fasta(path: str | Path) -> Iterator[SequenceRecord]:
    """Yield validated records of a FASTA file, labels taken from Rfam-style descriptions.

    Arguments:
        path: a FASTA file (plain or gzip-compressed), or ``-`` for standard input.

    Raises:
        InputError: missing or empty file, text before the first header, an empty id or
            sequence, an invalid residue, or bytes that are not UTF-8; the message names the
            file and line.
    """
    name = display_name(path)
    for record_id, description, line_no, body in _fasta_entries(path, _check_residues):
        sequence = normalise_sequence("".join(body))
        if not sequence:
            raise InputError(f"{name}:{line_no}: record {record_id!r} has no sequence")
        family, clan = labels_from_description(description)
        yield SequenceRecord(
            id=record_id,
            sequence=sequence,
            description=description,
            family=family,
            clan=clan,
            source=f"{name}:{line_no}",
        )


def iter_fasta_as_written(path: str | Path) -> Iterator[tuple[str, str]]:
    """``(id, sequence)`` of each record with the sequence as written (whitespace removed).

    For tokenisers that give gaps and every IUPAC code a token of their own; no residue is
    checked except that it is ASCII. Input forms as :func:`iter_fasta`.

    Raises:
        InputError: as :func:`iter_fasta`, or a non-ASCII residue.
    """
    name = display_name(path)
    for record_id, _, line_no, body in _fasta_entries(path, _check_ascii):
        sequence = "".join(body)
        if not sequence:
            raise InputError(f"{name}:{line_no}: record {record_id!r} has no sequence")
        yield record_id, sequence


def _check_residues(name: str, line_no: int, record_id: str, text: str) -> str:
    residues = text.translate({ord(c): None for c in GAP_CHARACTERS})
    bad = _INVALID.search(residues)
    if bad:
        raise InputError(
            f"{name}:{line_no}: invalid residue {bad.group()!r} in record {record_id!r} "
            "(expected nucleotides or IUPAC codes)"
        )
    return residues


def _check_ascii(name: str, line_no: int, record_id: str, text: str) -> str:
    if not text.isascii():
        raise InputError(f"{name}:{line_no}: record {record_id!r} has non-ASCII characters")
    return text


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

    The file may be gzip-compressed or ``-`` (standard input), as every text input.

    Returns:
        id → (family, clan); ``NA`` or an empty cell becomes ``""``.

    Raises:
        InputError: unreadable or non-UTF-8 file, or a row with fewer than two columns.
    """
    name = display_name(path)
    labels: dict[str, tuple[str, str]] = {}
    for line_no, line in read_lines(path, "labels table"):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if line_no == 1 and cells[0].lower() == "id":
            continue
        if len(cells) < 2:
            raise InputError(
                f"{name}:{line_no}: expected tab-separated 'id family clan', found {line[:60]!r}"
            )
        family = "" if cells[1] in ("", "NA") else cells[1]
        clan = "" if len(cells) < 3 or cells[2] in ("", "NA") else cells[2]
        labels[cells[0]] = (family, clan)
    return labels


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it into place only on success.

    The file gets the mode a plain ``open`` would give it (``0o666`` less the umask), not
    ``mkstemp``'s owner-only ``0o600``. Use this for every output file of the project.

    Arguments:
        path: the file to write (missing parent folders are created).
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def open_output(path: str | Path) -> Iterator[IO[str]]:
    """A text output: ``-`` is standard output, anything else is written by :func:`atomic_write`."""
    if str(path) == STDIO:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_write(path) as handle:
        yield handle


def check_output(
    path: str | Path,
    *,
    option: str,
    folder: bool = False,
    inputs: Iterable[str | Path] = (),
) -> None:
    """Fail now, not after the long work, if ``path`` cannot be written as an output.

    Missing parent folders are fine (they are created when writing) as long as the nearest
    existing one is a writable folder; writability is probed by creating and removing a
    temporary file there, which also catches read-only mounts and root-owned folders.

    Arguments:
        path: the output file (or folder, with ``folder``); ``-`` (standard output) passes.
        option: the option that named it, for the message (``"--out"``).
        folder: the output is a folder that will hold files.
        inputs: input files that must not be overwritten (compared with
            :func:`os.path.samefile`, so symbolic and hard links count).

    Raises:
        ConfigError: the path is (or is inside) something of the wrong kind, is one of the
            inputs, or its folder is not writable.
    """
    if str(path) == STDIO:
        if folder:
            raise ConfigError(f"{option} needs a folder, not '-' (standard output)")
        return
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ConfigError(f"{option} {path}: exists and is not a folder")
        if not folder and path.is_dir():
            raise ConfigError(f"{option} {path}: is a folder (expected a file name)")
        for source in inputs:
            if str(source) != STDIO and os.path.exists(source) and os.path.samefile(source, path):
                raise ConfigError(
                    f"{option} {path}: is the input {source}; refusing to overwrite an input"
                )
    probe_in = path if folder and path.is_dir() else path.parent
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ConfigError(f"{option} {path}: {probe_in} is not a folder")
    reason = cannot_write_in(probe_in)
    if reason:
        raise ConfigError(f"{option} {path}: cannot write in {probe_in} ({reason})")


def cannot_write_in(folder: str | Path) -> str:
    """Why no file can be created in ``folder``, or ``""`` when one can.

    A real probe (a temporary file created and removed), since permission bits say nothing
    for root, read-only mounts or pseudo file systems.
    """
    if not Path(folder).is_dir():
        return "not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".rinalmo-search-probe."):
            return ""
    except OSError as error:
        return error.strerror or str(error)


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, *, width: int = 80) -> None:
    """Write records as FASTA (``>id description``), atomically."""
    with atomic_write(path) as handle:
        for record in records:
            header = f"{record.id} {record.description}".rstrip()
            handle.write(f">{header}\n")
            for start in range(0, len(record.sequence), width):
                handle.write(record.sequence[start : start + width] + "\n")
