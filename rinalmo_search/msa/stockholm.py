"""Reading and writing Stockholm alignments, keeping every character as the tool wrote it.

:func:`iter_stockholm` is the project's one Stockholm parser: the MSA pipeline and its
evaluation, the Rfam seed readers of ``training.rfam`` and the demo (:func:`read_stockholm_records`)
all read through it.

Biopython's Stockholm parser turns Infernal's insert gaps (``.``) and lower-case insert residues
into plain ``-`` and upper case; that difference (match column or insert) matters for scoring
and for the user, so the few lines of Stockholm handled here are read verbatim.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..errors import InputError
from ..seqio import SequenceRecord, normalise_sequence

GAPS = frozenset("-.~_")


@dataclass
class Stockholm:
    """One Stockholm alignment.

    Attributes:
        names: sequence names in file order.
        rows: aligned rows (same order and length).
        gf: ``#=GF`` lines as ``(tag, text)`` pairs, in order.
        gc: ``#=GC`` column annotations (e.g. ``SS_cons``, ``RF``).
        gr: ``#=GR`` per-residue annotations: name → tag → string.
        gs: ``#=GS`` lines: name → tag → text.
    """

    names: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    gf: list[tuple[str, str]] = field(default_factory=list)
    gc: dict[str, str] = field(default_factory=dict)
    gr: dict[str, dict[str, str]] = field(default_factory=dict)
    gs: dict[str, dict[str, str]] = field(default_factory=dict)

    def row(self, name: str) -> str:
        """The aligned row of sequence ``name``."""
        return self.rows[self.names.index(name)]

    @property
    def width(self) -> int:
        """Number of columns."""
        return len(self.rows[0]) if self.rows else 0

    def gf_values(self, tag: str) -> list[str]:
        """Every ``#=GF`` text with this tag."""
        return [text for key, text in self.gf if key == tag]

    def gf_text(self, tag: str) -> str:
        """The ``#=GF`` texts with this tag joined by spaces (``""`` when there is none)."""
        return " ".join(self.gf_values(tag))

    def gf_first_word(self, tag: str) -> str:
        """The first word of the first ``#=GF`` line with this tag (e.g. ``AC``), or ``""``."""
        for text in self.gf_values(tag):
            return text.split()[0] if text.split() else ""
        return ""


def read_stockholm(path: str | Path) -> Stockholm:
    """Read the first alignment of a Stockholm file (interleaved blocks allowed).

    Raises:
        InputError: as :func:`iter_stockholm`.
    """
    for alignment in iter_stockholm(path):
        return alignment
    raise AssertionError("unreachable: iter_stockholm yields at least one alignment")


def iter_stockholm(path: str | Path) -> Iterator[Stockholm]:
    """Every alignment of a Stockholm file, in file order: the one Stockholm parser.

    A file may hold many alignments (Rfam's ``Rfam.seed``), each from ``# STOCKHOLM 1.0`` to
    ``//``, and each in interleaved blocks. ``*.gz`` is read through gzip; bytes that are not
    UTF-8 become U+FFFD (Rfam files are not all UTF-8). Lines are read one at a time.

    Raises:
        InputError: unreadable file, no ``# STOCKHOLM`` header, no ``//`` terminator, or rows
            of unequal length; the message names the file and line.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            handle: IO[str] = gzip.open(path, "rt", encoding="utf-8", errors="replace")
        else:
            handle = path.open(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"{path}: cannot read Stockholm file ({error.strerror})") from None
    try:
        with handle:
            lines = enumerate(handle, start=1)
            count = 0
            for line_no, line in lines:
                if not line.strip():
                    continue
                if not line.startswith("# STOCKHOLM"):
                    raise InputError(f"{path}:{line_no}: not a Stockholm file (expected "
                                     f"'# STOCKHOLM 1.0', found {line.strip()[:40]!r})")
                yield _read_alignment(lines, path)
                count += 1
            if count == 0:
                raise InputError(f"{path}:1: not a Stockholm file (expected '# STOCKHOLM 1.0', "
                                 "found an empty file)")
    except (OSError, EOFError, zlib.error) as error:  # a damaged .gz
        raise InputError(f"{path}: cannot read Stockholm file ({error})") from None


def _read_alignment(lines: Iterator[tuple[int, str]], path: Path) -> Stockholm:
    """The alignment after a ``# STOCKHOLM`` line, up to and including its ``//``."""
    alignment = Stockholm()
    pieces: dict[str, list[str]] = {}
    gc: dict[str, list[str]] = {}
    gr: dict[str, dict[str, list[str]]] = {}
    for line_no, line in lines:
        text = line.rstrip()
        if not text.strip():
            continue
        if text.startswith("//"):
            break
        if text.startswith("#=GF"):
            parts = text.split(None, 2)
            tag = parts[1] if len(parts) > 1 else ""
            alignment.gf.append((tag, parts[2] if len(parts) > 2 else ""))
        elif text.startswith("#=GC"):
            parts = text.split()
            if len(parts) != 3:
                raise InputError(f"{path}:{line_no}: malformed #=GC line {text[:60]!r}")
            gc.setdefault(parts[1], []).append(parts[2])
        elif text.startswith("#=GR"):
            parts = text.split()
            if len(parts) != 4:
                raise InputError(f"{path}:{line_no}: malformed #=GR line {text[:60]!r}")
            gr.setdefault(parts[1], {}).setdefault(parts[2], []).append(parts[3])
        elif text.startswith("#=GS"):
            parts = text.split(None, 3)
            if len(parts) >= 3:
                alignment.gs.setdefault(parts[1], {})[parts[2]] = parts[3] if len(parts) > 3 else ""
        elif text.startswith("#"):
            continue
        else:
            parts = text.split()
            if len(parts) != 2:
                raise InputError(
                    f"{path}:{line_no}: expected 'name aligned-sequence', found {text[:60]!r}"
                )
            if parts[0] not in pieces:
                pieces[parts[0]] = []
                alignment.names.append(parts[0])
            pieces[parts[0]].append(parts[1])
    else:
        raise InputError(f"{path}: Stockholm alignment has no '//' terminator")
    alignment.rows = ["".join(pieces[name]) for name in alignment.names]
    alignment.gc = {tag: "".join(chunks) for tag, chunks in gc.items()}
    alignment.gr = {
        name: {tag: "".join(chunks) for tag, chunks in tags.items()} for name, tags in gr.items()
    }
    width = alignment.width
    for name, row in zip(alignment.names, alignment.rows, strict=True):
        if len(row) != width:
            raise InputError(
                f"{path}: row {name!r} has {len(row)} columns, expected {width}"
            )
    for tag, value in alignment.gc.items():
        if len(value) != width:
            raise InputError(
                f"{path}: #=GC {tag} has {len(value)} columns, expected {width}"
            )
    return alignment


def read_stockholm_records(path: str | Path) -> list[SequenceRecord]:
    """Ungapped records of every alignment in a (multi-)Stockholm file, such as Rfam seeds.

    Each record gets the family of its alignment (``#=GF AC``) and clan (``#=GF CL``), when
    present, also as its description (``FAMILY CLAN``, ``NA`` for none), as FASTA headers
    carry them.

    Raises:
        InputError: as :func:`iter_stockholm`.
    """
    records = []
    for alignment in iter_stockholm(path):
        family = alignment.gf_first_word("AC")
        clan = alignment.gf_first_word("CL")
        for name, row in zip(alignment.names, alignment.rows, strict=True):
            records.append(
                SequenceRecord(
                    id=name,
                    sequence=normalise_sequence(row),
                    description=f"{family or 'NA'} {clan or 'NA'}",
                    family=family,
                    clan=clan,
                    source=str(path),
                )
            )
    return records


def write_stockholm(alignment: Stockholm, handle: IO[str]) -> None:
    """Write ``alignment`` as one-block (Pfam-style) Stockholm."""
    labels = list(alignment.names)
    labels += [f"#=GR {name} {tag}" for name, tags in alignment.gr.items() for tag in tags]
    labels += [f"#=GC {tag}" for tag in alignment.gc]
    width = max((len(label) for label in labels), default=0) + 1
    handle.write("# STOCKHOLM 1.0\n")
    for tag, text in alignment.gf:
        handle.write(f"#=GF {tag} {text}\n".rstrip(" \n") + "\n")
    if alignment.gs:
        handle.write("\n")
        for name, tags in alignment.gs.items():
            for tag, text in tags.items():
                handle.write(f"#=GS {name} {tag} {text}\n")
    handle.write("\n")
    for name, row in zip(alignment.names, alignment.rows, strict=True):
        handle.write(f"{name:<{width}}{row}\n")
        for tag, value in alignment.gr.get(name, {}).items():
            handle.write(f"{'#=GR ' + name + ' ' + tag:<{width}}{value}\n")
    for tag, value in alignment.gc.items():
        handle.write(f"{'#=GC ' + tag:<{width}}{value}\n")
    handle.write("//\n")
