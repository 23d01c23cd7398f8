"""Static checks of the Galaxy suite: every tool parses, every test file exists, lint is clean.

These need no Galaxy server: they use galaxy-tool-util (the parser Galaxy itself uses) and
planemo from the project's venv.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from galaxy.tool_util.parser import get_tool_source
from galaxy_server import REPO_ROOT, SUITE_DIR, TEST_DATA, VENV_BIN, tool_files

import rinalmo_search

TOOLS = tool_files()
WORKFLOW_DIR = REPO_ROOT / "galaxy_tools" / "workflows"
#: Parameter names that would expose an endpoint or a secret in the tool form.
FORBIDDEN_PARAM = re.compile(r"(^|_)(db|uri|url|token|password|secret|host|triton|milvus)($|_)")


def tool_ids() -> list[str]:
    return [path.name for path in TOOLS]


def data_param_names(tool_xml: Path) -> set[str]:
    """Names of the ``type="data"`` parameters of a tool, macros expanded."""
    source = get_tool_source(str(tool_xml))
    root = source.root
    return {
        param.get("name") or param.get("argument", "").lstrip("-").replace("-", "_")
        for param in root.iter("param")
        if param.get("type") == "data"
    }


def test_suite_has_the_four_steps() -> None:
    ids = {get_tool_source(str(path)).parse_id() for path in TOOLS}
    assert ids == {
        "rinalmo_search_search",
        "rinalmo_search_msa",
        "rinalmo_search_index",
        "rinalmo_search_train",
    }, f"unexpected tool ids in {SUITE_DIR}: {sorted(ids)}"


@pytest.mark.parametrize("tool_xml", TOOLS, ids=tool_ids())
def test_tool_parses_with_galaxy_conventions(tool_xml: Path) -> None:
    source = get_tool_source(str(tool_xml))
    assert source.parse_id().startswith("rinalmo_search_")
    assert source.parse_version() == f"{rinalmo_search.__version__}+galaxy0", (
        f"{tool_xml.name}: version {source.parse_version()!r} does not follow the package "
        f"version {rinalmo_search.__version__!r} (update @TOOL_VERSION@ in macros.xml)"
    )
    command = source.parse_command()
    assert "rinalmo-search " in command, f"{tool_xml.name}: the command does not call the CLI"
    exit_codes = source.parse_stdio()[0]
    assert any(code.range_start <= 1 <= code.range_end for code in exit_codes), (
        f"{tool_xml.name}: a non-zero exit code does not fail the job"
    )
    assert not any(code.range_start <= 0 <= code.range_end for code in exit_codes)
    assert source.root.find("command").get("detect_errors") == "exit_code"
    help_text = source.parse_help().content
    for heading in ("What it does", "Inputs", "Outputs"):
        assert heading in help_text, f"{tool_xml.name}: help lacks the {heading!r} section"
    dois = [c.text for c in source.root.iter("citation") if c.get("type") == "doi"]
    assert "10.1038/s41467-025-60872-5" in dois, f"{tool_xml.name}: RiNALMo citation missing"
    assert source.parse_edam_topics() and source.parse_edam_operations()
    tests = source.parse_tests_to_dict()["tests"]
    assert tests, f"{tool_xml.name} has no <test>"


@pytest.mark.parametrize("tool_xml", TOOLS, ids=tool_ids())
def test_no_endpoint_or_secret_parameters(tool_xml: Path) -> None:
    source = get_tool_source(str(tool_xml))
    names = [p.get("name") or p.get("argument", "") for p in source.root.iter("param")]
    bad = [name for name in names if FORBIDDEN_PARAM.search(name.lstrip("-").lower())]
    assert not bad, f"{tool_xml.name}: endpoint/secret parameters {bad} (use admin env settings)"
    assert "--db" not in source.parse_command().replace("--db 'collection.db'", ""), (
        f"{tool_xml.name}: only the job-local Milvus Lite file may be passed with --db"
    )


def referenced_test_files() -> dict[str, set[str]]:
    """Test-data file name → tools whose ``<tests>`` use it as an input or expected output."""
    used: dict[str, set[str]] = {}
    for tool_xml in TOOLS:
        source = get_tool_source(str(tool_xml))
        data_params = data_param_names(tool_xml)
        for test in source.parse_tests_to_dict()["tests"]:
            for item in test["inputs"]:
                if item["name"].split("|")[-1] in data_params:
                    used.setdefault(item["value"], set()).add(tool_xml.name)
            for output in test["outputs"]:
                expected = output["value"]
                if expected:
                    used.setdefault(expected, set()).add(tool_xml.name)
    return used


def test_every_test_data_file_exists() -> None:
    used = referenced_test_files()
    assert used, "no test inputs found"
    missing = {
        name: sorted(tools) for name, tools in used.items() if not (TEST_DATA / name).is_file()
    }
    assert not missing, f"test-data files referenced but missing: {missing}"


def test_no_orphan_test_data() -> None:
    used = set(referenced_test_files()) | {"rinalmo_collections.loc"}
    present = {path.name for path in TEST_DATA.iterdir()}
    orphans = sorted(present - used)
    assert not orphans, f"test-data files no tool test uses: {orphans}"


def test_generated_test_data_is_current(tmp_path: Path) -> None:
    script = Path(__file__).with_name("make_test_data.py")
    subprocess.run([str(VENV_BIN / "python"), str(script), str(tmp_path)], check=True)
    generated = sorted(path.name for path in tmp_path.iterdir())
    assert generated, "make_test_data.py wrote nothing"
    for name in generated:
        assert (tmp_path / name).read_bytes() == (TEST_DATA / name).read_bytes(), (
            f"test-data/{name} differs from make_test_data.py's output: rerun the script"
        )


def table_columns(conf: Path) -> dict[str, list[str]]:
    tables = ET.parse(conf).getroot().findall("table")
    return {
        table.get("name"): [c.strip() for c in table.findtext("columns", "").split(",")]
        for table in tables
    }


def loc_rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def test_data_table_files_agree() -> None:
    sample = table_columns(SUITE_DIR / "tool_data_table_conf.xml.sample")
    test = table_columns(SUITE_DIR / "tool_data_table_conf.xml.test")
    assert sample == test and "rinalmo_collections" in sample, (sample, test)
    columns = sample["rinalmo_collections"]
    assert columns[:2] == ["value", "name"], columns
    assert not loc_rows(SUITE_DIR / "tool-data" / "rinalmo_collections.loc.sample"), (
        "the .loc.sample must hold comments only (admins add their own rows)"
    )
    rows = loc_rows(TEST_DATA / "rinalmo_collections.loc")
    assert rows and all(len(row) == len(columns) for row in rows), (
        f"expected {len(columns)} tab-separated columns {columns} in the test loc, found {rows}"
    )


def test_data_table_values_in_tests_exist() -> None:
    known = {row[0] for row in loc_rows(TEST_DATA / "rinalmo_collections.loc")}
    for tool_xml in TOOLS:
        source = get_tool_source(str(tool_xml))
        table_params = {
            param.get("name")
            for param in source.root.iter("param")
            if param.find("options") is not None
            and param.find("options").get("from_data_table") == "rinalmo_collections"
        }
        for test in source.parse_tests_to_dict()["tests"]:
            for item in test["inputs"]:
                if item["name"].split("|")[-1] in table_params:
                    assert item["value"] in known, (
                        f"{tool_xml.name}: test value {item['value']!r} is not in the test loc "
                        f"(known: {sorted(known)})"
                    )


def run_planemo(*args: str) -> subprocess.CompletedProcess:
    planemo = VENV_BIN / "planemo"
    assert planemo.exists(), f"{planemo} not found (expected planemo: pip install -e '.[dev]')"
    return subprocess.run(
        [str(planemo), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


def test_planemo_lint_is_clean() -> None:
    result = run_planemo(
        "lint", "--fail_level", "warn", "--skip", "BioToolsValid", "-r", "galaxy_tools/"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"planemo lint failed:\n{output[-6000:]}"
    linted = re.findall(r"Linting tool (\S+)", output)
    assert len(linted) == len(TOOLS), f"planemo linted {linted}, expected {len(TOOLS)} tools"


def test_workflow_lint_is_clean() -> None:
    workflows = [
        path
        for path in sorted(WORKFLOW_DIR.glob("*.ga")) + sorted(WORKFLOW_DIR.glob("*.yml"))
        if not re.search(r"[-_]tests?\.yml$", path.name)
    ]
    assert workflows, f"no workflow in {WORKFLOW_DIR}"
    for workflow in workflows:
        # The tool-id check only asks the Tool Shed about steps pinned to a shed repository;
        # ours are not, so the lint stays offline.
        result = run_planemo("workflow_lint", "--fail_level", "warn", str(workflow))
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"workflow_lint {workflow.name} failed:\n{output[-4000:]}"
        assert "Tests appear structurally correct" in output, (
            f"workflow_lint found no valid test file for {workflow.name}:\n{output[-2000:]}"
        )
