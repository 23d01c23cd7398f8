"""The Milvus standalone compose file is well-formed (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "milvus-standalone.yml"


def test_compose_file_defines_milvus_standalone_stack() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"etcd", "minio", "standalone"}
    for name, service in services.items():
        image = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", service["image"])
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert "healthcheck" in service, name
    standalone = services["standalone"]
    assert standalone["depends_on"] == {
        "etcd": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
    }
    assert any(str(port).endswith(":19530") for port in standalone["ports"])
    assert standalone["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert standalone["environment"]["MINIO_ADDRESS"] == "minio:9000"


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the Docker Compose plugin is not installed on this machine",
)
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
