"""Shared fixtures of the Galaxy wrapper tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from galaxy_server import VENV_BIN


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "galaxy: starts a real Galaxy server on 127.0.0.1 and runs the wrappers' tool tests "
        "(minutes; needs tests/galaxy/setup_galaxy.sh)",
    )


@pytest.fixture(scope="session")
def planemo() -> Path:
    """The planemo executable of the project's venv (a ``dev`` extra)."""
    path = VENV_BIN / "planemo"
    if not path.exists():
        pytest.fail(f"{path} not found (expected planemo: pip install -e '.[dev]')")
    return path
