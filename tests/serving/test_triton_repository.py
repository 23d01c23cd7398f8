"""The model repository writer, and the repository committed under model_repository/."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from rinalmo_search.embedder.base import ModelInfo
from rinalmo_search.embedder.triton.repository import (
    BACKEND_SOURCE,
    FRONT_SOURCE,
    FRONT_SUFFIX,
    write_model_repository,
)
from tritonclient.grpc import model_config_pb2

from rinalmo_search.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "model_repository"


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(), config)
    return config


def _repository(tmp_path: Path, name: str = "emb") -> Path:
    (tmp_path / name / "1").mkdir(parents=True)
    (tmp_path / name / "1" / "model.pt").write_bytes(b"not read by the writer")
    return tmp_path


def test_writes_gpu_and_cpu_configs_with_the_model_identity(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    info = ModelInfo("rinalmo-giga-head", "2024.1", 256)
    write_model_repository(repository, "emb", info, 514, max_batch_size=16)
    gpu = _parse(repository / "emb" / "config.pbtxt")
    cpu = _parse(repository / "emb" / "configs" / "cpu_python.pbtxt")
    assert gpu.platform == "pytorch_libtorch" and not gpu.backend
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert cpu.backend == "python" and not cpu.platform
    assert [g.kind for g in cpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    for config in (gpu, cpu):
        assert config.name == "emb"
        assert config.max_batch_size == 16
        assert config.HasField("dynamic_batching")
        assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
            ("input_ids", model_config_pb2.TYPE_INT64, [-1]),
            ("attention_mask", model_config_pb2.TYPE_INT64, [-1]),
        ]
        assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
            ("embedding", model_config_pb2.TYPE_FP32, [256])
        ]
        parameters = {key: value.string_value for key, value in config.parameters.items()}
        assert parameters["model_name"] == "rinalmo-giga-head"
        assert parameters["model_version"] == "2024.1"
        assert parameters["embedding_dim"] == "256"
        assert parameters["max_length"] == "514"
    model_py = repository / "emb" / "1" / "model.py"
    assert model_py.read_text() == BACKEND_SOURCE.read_text()
    front = _parse(repository / "emb_text" / "config.pbtxt")
    assert front == _parse(repository / "emb_text" / "configs" / "cpu_python.pbtxt")
    assert front.backend == "python" and front.name == "emb_text"
    assert [(i.name, i.data_type) for i in front.input] == [
        ("sequence", model_config_pb2.TYPE_STRING)
    ]
    assert [(o.name, list(o.dims)) for o in front.output] == [("embedding", [256])]
    assert front.parameters["target_model"].string_value == "emb"
    assert (repository / "emb_text" / "1" / "model.py").read_text() == FRONT_SOURCE.read_text()
    assert (repository / "emb" / "config.pbtxt").stat().st_mode & 0o044 == 0o044


def test_refresh_overwrites_the_identity(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    write_model_repository(repository, "emb", ModelInfo("a", "1", 512), 1026)
    write_model_repository(repository, "emb", ModelInfo("b", "2", 512), 1026)
    parameters = _parse(repository / "emb" / "config.pbtxt").parameters
    assert parameters["model_name"].string_value == "b"
    assert parameters["model_version"].string_value == "2"


def test_refuses_a_repository_without_model_pt(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"No exported TorchScript model at .*emb/1/model\.pt"):
        write_model_repository(tmp_path, "emb", ModelInfo("a", "1", 512), 1026)


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_refuses_bad_model_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="Invalid Triton model name"):
        write_model_repository(tmp_path, name, ModelInfo("a", "1", 512), 1026)


def test_committed_repository_is_what_the_writer_writes(tmp_path: Path) -> None:
    models = sorted(
        p.parent for p in COMMITTED.glob("*/config.pbtxt") if _parse(p).platform
    )  # the embedding models; their front models are checked with them
    assert models, f"no model configuration under {COMMITTED}"
    for model_dir in models:
        committed = _parse(model_dir / "config.pbtxt")
        parameters = {key: value.string_value for key, value in committed.parameters.items()}
        info = ModelInfo(
            parameters["model_name"], parameters["model_version"], int(parameters["embedding_dim"])
        )
        repository = _repository(tmp_path / model_dir.name, model_dir.name)
        write_model_repository(
            repository,
            model_dir.name,
            info,
            int(parameters["max_length"]),
            max_batch_size=committed.max_batch_size,
            queue_delay_us=committed.dynamic_batching.max_queue_delay_microseconds,
        )
        front = model_dir.name + FRONT_SUFFIX
        for relative in (
            f"{model_dir.name}/config.pbtxt",
            f"{model_dir.name}/configs/cpu_python.pbtxt",
            f"{front}/config.pbtxt",
            f"{front}/configs/cpu_python.pbtxt",
        ):
            expected = (repository / relative).read_text()
            assert (COMMITTED / relative).read_text() == expected, f"{relative} is stale"
    assert sorted(p.name for p in COMMITTED.iterdir() if p.is_dir()) == sorted(
        [m.name for m in models] + [m.name + FRONT_SUFFIX for m in models]
    )
