"""rinalmo_search.tools: programs stopped with everything they started; one version probe."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from rinalmo_search.errors import ToolError
from rinalmo_search.tools import run_tool, tool_version


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_timeout_stops_the_program_and_what_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    clock = time.monotonic()
    with pytest.raises(ToolError, match=r"sh did not finish within 0.5 s"):
        run_tool(["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"], timeout=0.5)
    assert time.monotonic() - clock < 4
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 2
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_standard_input_is_given_or_empty() -> None:
    assert run_tool(["cat"], input_text="ACGU\n").stdout == "ACGU\n"
    assert run_tool(["cat"]).stdout == ""  # /dev/null, never the terminal


@pytest.mark.parametrize(("program", "pattern"), [
    ("mafft", r"7\.\d+"), ("cmalign", r"1\.1\.\d+"), ("cmsearch", r"1\.1\.\d+"),
    ("nhmmer", r"3\.\d+(\.\d+)?"), ("blastn", r"2\.\d+\.\d+"), ("makeblastdb", r"2\.\d+\.\d+"),
])
def test_tool_version_of_every_program_we_run(program: str, pattern: str) -> None:
    assert re.fullmatch(pattern, tool_version(program))


def test_mmseqs_version_is_what_mmseqs_version_prints() -> None:
    # its help text holds a DOI (10.1038/...), which a version-number pattern would take
    printed = subprocess.run(["mmseqs", "version"], capture_output=True, text=True).stdout
    assert tool_version("mmseqs") == printed.split()[0]


def test_tool_version_of_a_missing_program_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="not found on PATH"):
        tool_version("no-such-program-xyz")
