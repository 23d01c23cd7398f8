"""Fetch Rfam release files over HTTP(S): resumable, with MD5 checks where Rfam publishes them.

Rfam serves each release at ``https://ftp.ebi.ac.uk/pub/databases/Rfam/RELEASE/`` with an
``md5.txt`` (``md5sum`` output) beside the files. A download goes to ``NAME.part`` and is
renamed only when complete and checked, so a killed run leaves either a finished file or a
``.part`` that the next run continues with an HTTP ``Range`` request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from rinalmo_search.errors import InputError, RinalmoSearchError
from rinalmo_search.seqio import atomic_write

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://ftp.ebi.ac.uk/pub/databases/Rfam"
#: What ``data prepare`` needs from a release.
DEFAULT_FILES = (
    "Rfam.seed.gz",
    "Rfam.clanin",
    "Rfam.full_region.gz",
    "database_files/family.txt.gz",
)
CHECKSUM_FILE = "md5.txt"
_RELEASE = re.compile(r"^(\d+\.\d+|CURRENT)$")
_CHUNK = 1 << 16


class DownloadError(RinalmoSearchError):
    """A release file could not be fetched or failed its checksum."""


def file_md5(path: str | Path) -> str:
    """MD5 hex digest of a file (what Rfam's ``md5.txt`` lists)."""
    digest = hashlib.md5()  # noqa: S324 - matching the published checksums, not security
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_md5_list(text: str) -> dict[str, str]:
    """Parse ``md5sum`` output (``HASH  NAME`` or ``HASH *NAME``) into name → hash."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        cells = line.strip().split(maxsplit=1)
        if len(cells) == 2 and re.fullmatch(r"[0-9a-fA-F]{32}", cells[0]):
            name = cells[1].lstrip("*").strip()
            sums[name.removeprefix("./")] = cells[0].lower()
    return sums


def fetch(url: str, target: str | Path, *, retries: int = 3, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target``, resuming from ``target.part`` if it exists.

    Arguments:
        url: the file's URL.
        target: the final path; the partial download lives at ``target + '.part'``.
        retries: attempts after a dropped connection (each resumes where the last stopped).
        timeout: socket timeout in seconds.

    Returns:
        ``target``.

    Raises:
        DownloadError: HTTP error (other than a dropped connection) or retries exhausted.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url)
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
                if have and status == 200:
                    log.info("%s: server ignored the range request; starting again", url)
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                mode = "ab" if have and status == 206 else "wb"
                with part.open(mode) as handle, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True,
                    desc=target.name, leave=False,
                ) as bar:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        handle.write(block)
                        bar.update(len(block))
            part.replace(target)
            return target
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:  # the partial file already holds everything
                part.replace(target)
                return target
            raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            if attempt == retries:
                raise DownloadError(
                    f"{url}: download failed after {retries} attempts ({reason}); run the "
                    "command again to resume"
                ) from None
            log.warning("%s: %s; resuming (attempt %d of %d)", url, reason, attempt + 1, retries)
            time.sleep(min(2.0 * attempt, 10.0))
    raise AssertionError("unreachable")


def download_release(
    release: str,
    out_dir: str | Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    files: Sequence[str] = DEFAULT_FILES,
    with_fasta: bool = False,
) -> list[Path]:
    """Download one Rfam release's files into ``out_dir``, keeping the release's layout.

    Files already present with the published MD5 are not fetched again. Where ``md5.txt``
    lists no checksum for a file, the file is kept and its MD5 recorded in
    ``download.json``, with a warning.

    Arguments:
        release: e.g. ``"14.10"`` or ``"CURRENT"``.
        out_dir: destination folder.
        base_url: URL of the folder holding the release folders.
        files: paths relative to the release folder.
        with_fasta: also fetch ``fasta_files/RFxxxxx.fa.gz`` for every family in
            ``Rfam.clanin``/``family.txt`` (several GB).

    Returns:
        The paths of the downloaded (or already complete) files.

    Raises:
        InputError: an invalid release string.
        DownloadError: a file could not be fetched or its checksum differs.
    """
    if not _RELEASE.match(release):
        raise InputError(f"Invalid release {release!r} (expected e.g. 14.10 or CURRENT)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = f"{base_url.rstrip('/')}/{release}"
    try:
        checksum_path = fetch(f"{root}/{CHECKSUM_FILE}", out / CHECKSUM_FILE)
        checksums = parse_md5_list(checksum_path.read_text(errors="replace"))
    except DownloadError as error:
        log.warning("no checksums published (%s); downloads are not verified", error)
        checksums = {}

    wanted = list(files)
    if with_fasta:
        family_table = out / "database_files" / "family.txt.gz"
        if "database_files/family.txt.gz" not in wanted:
            wanted.append("database_files/family.txt.gz")
        fetch(f"{root}/database_files/family.txt.gz", family_table)
        import gzip

        with gzip.open(family_table, "rt", errors="replace") as handle:
            accessions = sorted({line.split("\t", 1)[0] for line in handle if line.strip()})
        wanted += [f"fasta_files/{accession}.fa.gz" for accession in accessions]

    record: dict[str, dict[str, object]] = {}
    written: list[Path] = []
    for name in tqdm(wanted, desc=f"Rfam {release}", unit="file", disable=len(wanted) < 10):
        target = out / name
        expected = checksums.get(name) or checksums.get(Path(name).name)
        if target.exists() and expected and file_md5(target) == expected:
            log.info("%s: already complete", name)
        else:
            if target.exists():
                target.unlink()
            fetch(f"{root}/{name}", target)
        found = file_md5(target)
        if expected and found != expected:
            bad = target.with_name(target.name + ".bad")
            target.replace(bad)
            raise DownloadError(
                f"{name}: MD5 {found} does not match the published {expected} (kept as {bad}); "
                "run the command again to download it afresh"
            )
        if not expected:
            log.warning("%s: no published checksum; MD5 %s recorded", name, found)
        record[name] = {"url": f"{root}/{name}", "md5": found, "verified": bool(expected)}
        written.append(target)
    with atomic_write(out / "download.json") as handle:
        json.dump({"release": release, "base_url": base_url, "files": record}, handle, indent=1)
        handle.write("\n")
    return written
