"""Run the wrappers' ``<tests>`` and the workflow test on a real Galaxy server from PyPI.

Before Galaxy starts, the collection named in ``test-data/rinalmo_collections.loc`` is built
with the real CLI into a Milvus Lite file, which the jobs reach through ``RINALMO_SEARCH_DB``
set in Galaxy's job configuration, exactly as an administrator's setting would. planemo then
runs the tests against the server (``--engine external_galaxy``) and the counts of passed and
failed tests are printed. One server serves both tests and is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from galaxy.tool_util.parser import get_tool_source
from galaxy_server import (
    GALAXY_VENV,
    REPO_ROOT,
    SUITE_DIR,
    TEST_DATA,
    VENV_BIN,
    GalaxyServer,
    running_galaxy,
    tool_files,
)

pytestmark = [pytest.mark.galaxy, pytest.mark.slow]  # a real Galaxy: ~13 min

PLANEMO_TIMEOUT_S = 1800
SETUP_TIMEOUT_S = 1800
WORKFLOW = REPO_ROOT / "galaxy_tools" / "workflows" / "rna-homology-search-msa.yml"


def ensure_galaxy_venv() -> None:
    """Install Galaxy into its venv if needed (idempotent; about a second when installed)."""
    script = Path(__file__).with_name("setup_galaxy.sh")
    subprocess.run(["bash", str(script), str(GALAXY_VENV)], check=True, timeout=SETUP_TIMEOUT_S)


def count_tool_tests(paths: list[Path]) -> int:
    """Number of ``<test>`` elements over ``paths``, as Galaxy parses them."""
    return sum(len(get_tool_source(str(path)).parse_tests_to_dict()["tests"]) for path in paths)


def build_test_collection(db: Path) -> None:
    """Index the test targets into the collection(s) the test data table names."""
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


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalaxyServer]:
    """A Galaxy server with the suite loaded and the test collection built; stopped after."""
    ensure_galaxy_venv()
    root = tmp_path_factory.mktemp("galaxy_run")
    db = root / "milvus" / "collections.db"
    db.parent.mkdir()
    build_test_collection(db)
    # The data table file points at the suite's test loc file by an absolute path.
    table_conf = root / "tool_data_table_conf.xml"
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
    galaxy_dir = root / "galaxy"
    galaxy_dir.mkdir()
    with running_galaxy(galaxy_dir, tool_files(), table_conf, job_env) as server:
        yield server


def planemo_test(
    planemo: Path, galaxy: GalaxyServer, paths: list[Path], out: Path
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``planemo test`` on ``paths`` against ``galaxy``; return the process and JSON report."""
    json_report = out / "test_output.json"
    scratch = out / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [
            str(planemo), "test",
            "--engine", "external_galaxy",
            "--galaxy_url", galaxy.url,
            "--galaxy_admin_key", galaxy.admin_key,
            "--galaxy_user_key", galaxy.user_key,
            "--test_output", str(out / "test_output.html"),
            "--test_output_json", str(json_report),
            "--test_output_xunit", str(out / "test_output.xml"),
            "--test_timeout", "900",
            *map(str, paths),
        ],
        cwd=out,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=PLANEMO_TIMEOUT_S,
    )
    assert json_report.exists(), (
        f"planemo wrote no report (exit {result.returncode}); output tail:\n"
        + (result.stdout + result.stderr)[-4000:]
        + "\nGalaxy log tail:\n"
        + galaxy.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
    )
    return result, json.loads(json_report.read_text(encoding="utf-8"))


def summarise(report: dict) -> tuple[int, int, list[str]]:
    """(passed, failed, failure descriptions) from planemo's structured JSON report."""
    passed = failed = 0
    failures: list[str] = []
    for test in report["tests"]:
        data = test["data"]
        if data["status"] == "success":
            passed += 1
        else:
            failed += 1
            problems = data.get("output_problems") or data.get("execution_problem") or ""
            failures.append(f"{test['id']}: {data['status']}: {str(problems)[:1500]}")
    return passed, failed, failures


def test_tool_tests_pass_on_real_galaxy(
    galaxy: GalaxyServer, tmp_path: Path, planemo: Path
) -> None:
    tools = tool_files()
    expected = count_tool_tests(tools)
    assert expected >= 1, f"no <test> found in {SUITE_DIR}"
    result, report = planemo_test(planemo, galaxy, tools, tmp_path)
    passed, failed, failures = summarise(report)
    print(f"\nGalaxy tool tests: {passed} passed, {failed} failed")
    assert failed == 0, "failed Galaxy tool tests:\n" + "\n".join(failures)
    assert passed == expected, f"expected {expected} Galaxy tool tests to pass, {passed} passed"
    assert result.returncode == 0, f"planemo exited {result.returncode}:\n{result.stderr[-4000:]}"


def test_workflow_test_passes_on_real_galaxy(
    galaxy: GalaxyServer, tmp_path: Path, planemo: Path
) -> None:
    result, report = planemo_test(planemo, galaxy, [WORKFLOW], tmp_path)
    passed, failed, failures = summarise(report)
    print(f"\nGalaxy workflow tests: {passed} passed, {failed} failed")
    assert failed == 0, "failed Galaxy workflow tests:\n" + "\n".join(failures)
    assert passed == 1, f"expected the workflow's 1 test to pass, {passed} passed"
    assert result.returncode == 0, f"planemo exited {result.returncode}:\n{result.stderr[-4000:]}"
