"""Structure of docker/compose.yml (no Docker engine here): services, mounts, endpoints."""

from __future__ import annotations

from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def test_compose_wires_triton_milvus_and_the_tool() -> None:
    compose = _load("compose.yml")
    included = [entry["path"] for entry in compose["include"]]
    services = dict(compose["services"])
    for path in included:
        services.update(_load(path)["services"])
    triton = services["triton"]
    assert any(v.endswith(":/models:ro") and "model_repository" in v for v in triton["volumes"])
    assert "--model-repository=/models" in triton["command"]
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    tool = services["rinalmo-search"]
    assert tool["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER.parent / tool["build"]["dockerfile"]).is_file()
    environment = tool["environment"]
    assert environment["RINALMO_SEARCH_EMBEDDER"] == "triton"
    # the tool reaches the others by service name, on their container ports
    host, port = environment["RINALMO_SEARCH_TRITON_URL"].split(":")
    assert host in services and any(p.endswith(f":{port}") for p in triton["ports"])
    milvus_host, milvus_port = environment["RINALMO_SEARCH_DB"].removeprefix("http://").split(":")
    assert milvus_host in services
    assert any(p.endswith(f":{milvus_port}") for p in services[milvus_host]["ports"])
    for dependency in tool["depends_on"]:
        assert dependency in services, f"rinalmo-search depends on unknown service {dependency}"
        assert "healthcheck" in services[dependency]


def test_dockerfile_copies_what_the_package_needs() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    for folder in ("rinalmo_search", "embedder", "milvus", "training"):
        assert f"COPY {folder} " in text
        assert (DOCKER.parent / folder).is_dir()
    assert "torch==2.13.0" in text
    assert 'ENTRYPOINT ["rinalmo-search"]' in text
