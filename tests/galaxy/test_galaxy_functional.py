"""Run the wrappers' ``<tests>`` on a real Galaxy server started from PyPI on 127.0.0.1.

Before Galaxy starts, the collection named in ``test-data/rinalmo_collections.loc`` is built
with the real CLI into a Milvus Lite file, which the jobs reach through ``RINALMO_SEARCH_DB``
exactly as an administrator's setting would. planemo then runs every tool test against the
server (``--engine external_galaxy``) and the counts of passed and failed tests are printed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
from galaxy.tool_util.parser import get_tool_source
from galaxy_server import GALAXY_VENV, SUITE_DIR, TEST_DATA, VENV_BIN, running_galaxy, tool_files

log = logging.getLogger(__name__)
pytestmark = pytest.mark.galaxy

PLANEMO_TIMEOUT_S = 1800
SETUP_TIMEOUT_S = 1800


def count_tool_tests(paths: list[Path]) -> int:
    """Number of ``<test>`` elements over ``paths``, as Galaxy parses them."""
    return sum(len(get_tool_source(str(path)).parse_tests_to_dict()["tests"]) for path in paths)


def build_test_collection(db: Path) -> None:
    """Index the test targets into the collection the test data table names."""
    loc = (TEST_DATA / "rinalmo_collections.loc").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in loc.splitlines() if line and not line.startswith("#")]
    for value, _name, model in rows:
        subprocess.run(
            [
                str(VENV_BIN / "rinalmo-search"), "--quiet", "index",
                str(TEST_DATA / "targets.fasta"), "--db", str(db),
                "--collection", value, "--model", model.strip(),
            ],
            check=True,
            timeout=300,
        )


def summarise(report: dict) -> tuple[int, int, list[str]]:
    """(passed, failed, failed test ids) from planemo's structured JSON report."""
    passed = failed = 0
    failures: list[str] = []
    for test in report["tests"]:
        status = test["data"]["status"]
        if status == "success":
            passed += 1
        else:
            failed += 1
            failures.append(f"{test['id']}: {status}")
    return passed, failed, failures


def ensure_galaxy_venv() -> None:
    """Install Galaxy into its venv if needed (idempotent; about a second when installed)."""
    script = Path(__file__).with_name("setup_galaxy.sh")
    subprocess.run(["bash", str(script), str(GALAXY_VENV)], check=True, timeout=SETUP_TIMEOUT_S)


def test_tool_tests_pass_on_real_galaxy(tmp_path: Path, planemo: Path) -> None:
    ensure_galaxy_venv()
    tools = tool_files()
    expected = count_tool_tests(tools)
    assert expected >= 1, f"no <test> found in {SUITE_DIR}"

    db = tmp_path / "milvus" / "collections.db"
    db.parent.mkdir()
    build_test_collection(db)

    # The data table file points at the suite's test loc file by an absolute path.
    table_conf = tmp_path / "tool_data_table_conf.xml"
    table_conf.write_text(
        (SUITE_DIR / "tool_data_table_conf.xml.test")
        .read_text(encoding="utf-8")
        .replace("${__HERE__}", str(SUITE_DIR)),
        encoding="utf-8",
    )
    job_env = {
        "RINALMO_SEARCH_DB": str(db),
        "RINALMO_SEARCH_EMBEDDER": "local",
        "RINALMO_SEARCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    galaxy_dir = tmp_path / "galaxy"
    galaxy_dir.mkdir()
    json_report = tmp_path / "tool_test_output.json"
    xunit_report = tmp_path / "tool_test_output.xml"
    with running_galaxy(galaxy_dir, tools, table_conf, job_env) as galaxy:
        planemo_tmp = tmp_path / "planemo_tmp"
        planemo_tmp.mkdir()
        result = subprocess.run(
            [
                str(planemo), "test",
                "--engine", "external_galaxy",
                "--galaxy_url", galaxy.url,
                "--galaxy_admin_key", galaxy.admin_key,
                "--galaxy_user_key", galaxy.user_key,
                "--test_output", str(tmp_path / "tool_test_output.html"),
                "--test_output_json", str(json_report),
                "--test_output_xunit", str(xunit_report),
                "--test_timeout", "600",
                *map(str, tools),
            ],
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": str(planemo_tmp)},
            capture_output=True,
            text=True,
            timeout=PLANEMO_TIMEOUT_S,
        )
    assert json_report.exists(), (
        f"planemo wrote no report (exit {result.returncode}); output tail:\n"
        + (result.stdout + result.stderr)[-4000:]
    )
    passed, failed, failures = summarise(json.loads(json_report.read_text(encoding="utf-8")))
    print(f"\nGalaxy tool tests: {passed} passed, {failed} failed")
    assert failed == 0, "failed Galaxy tool tests:\n" + "\n".join(failures) + "\n" + (
        result.stdout + result.stderr
    )[-6000:]
    assert passed == expected, f"expected {expected} Galaxy tool tests to pass, {passed} passed"
    assert result.returncode == 0, f"planemo exited {result.returncode}:\n{result.stderr[-4000:]}"
