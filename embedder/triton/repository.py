"""Write a Triton model repository around an exported TorchScript embedder.

One repository serves both worlds::

    <repository>/<name>/config.pbtxt             GPU: NVIDIA's container, platform pytorch_libtorch
    <repository>/<name>/configs/cpu_python.pbtxt CPU: Python backend (pytriton's tritonserver)
    <repository>/<name>/1/model.pt               TorchScript (input_ids, attention_mask) -> [B, D]
    <repository>/<name>/1/model.py               Python-backend model loading model.pt
    <repository>/<name>_text/...                 front model: sequences as strings in, same
                                                 embeddings out (tokenises, then calls <name>)

Both configurations declare the same tensors (``input_ids`` and ``attention_mask``, INT64
``[-1, -1]``; ``embedding``, FP32 ``[-1, dim]``), dynamic batching, and the model's identity in
``parameters`` (``model_name``, ``model_version``, ``embedding_dim``, ``max_length``), which
:class:`~rinalmo_search.embedder.triton.client.TritonEmbedder` reads to report the served model's
:class:`~rinalmo_search.embedder.base.ModelInfo`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from rinalmo_search.errors import ConfigError
from rinalmo_search.seqio import atomic_write

from ..base import ModelInfo
from .server import CPU_CONFIG_NAME

log = logging.getLogger(__name__)

#: Source of the Python-backend model copied to ``<name>/1/model.py``.
BACKEND_SOURCE = Path(__file__).with_name("backend.py")
#: Source of the tokenising front model copied to ``<name>_text/1/model.py``.
FRONT_SOURCE = Path(__file__).with_name("front.py")
#: Suffix of the front model's name.
FRONT_SUFFIX = "_text"
#: Config ``parameters`` keys that carry the model's identity.
INFO_KEYS = ("model_name", "model_version", "embedding_dim", "max_length")

_HEADER = """\
# Written by rinalmo_search.embedder.triton.repository.write_model_repository
# (run by 'rinalmo-search export'); edit the generator, not this file.
"""


def _quote(value: object) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parameters(values: dict[str, object]) -> str:
    return "".join(
        f"parameters {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}\n"
        for key, value in values.items()
    )


def _common(name: str, dim: int, max_batch_size: int, queue_delay_us: int) -> str:
    return (
        f"name: {_quote(name)}\n"
        f"max_batch_size: {max_batch_size}\n"
        "input [\n"
        '  { name: "input_ids" data_type: TYPE_INT64 dims: [ -1 ] },\n'
        '  { name: "attention_mask" data_type: TYPE_INT64 dims: [ -1 ] }\n'
        "]\n"
        "output [\n"
        f'  {{ name: "embedding" data_type: TYPE_FP32 dims: [ {dim} ] }}\n'
        "]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {queue_delay_us}\n"
        "}\n"
        "version_policy: { latest: { num_versions: 1 } }\n"
    )


def embedding_config(
    name: str,
    info: ModelInfo,
    max_length: int,
    *,
    gpu: bool,
    max_batch_size: int = 64,
    queue_delay_us: int = 2000,
    instances: int = 1,
    torch_threads: int = 1,
) -> str:
    """Text of the embedding model's config, on GPU or on CPU.

    Arguments:
        name: the Triton model name.
        info: identity of the exported model, recorded in ``parameters``.
        max_length: longest input the model was exported for, in tokens.
        gpu: ``config.pbtxt`` for NVIDIA's container (PyTorch backend on GPU); otherwise
            ``configs/cpu_python.pbtxt`` for the Python backend (CPU).
        max_batch_size: most sequences Triton batches into one model run.
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
        instances: model instances (per GPU, or on the CPU).
        torch_threads: torch intra-op threads per CPU instance (ignored on GPU).
    """
    if gpu:
        backend, kind = 'platform: "pytorch_libtorch"\n', "KIND_GPU"
        # PyTorch-backend options: no autograd, and no profiling re-runs on new shapes
        options: dict[str, object] = {
            "INFERENCE_MODE": "true",
            "DISABLE_OPTIMIZED_EXECUTION": "true",
        }
    else:
        backend, kind = 'backend: "python"\n', "KIND_CPU"
        options = {"torch_threads": torch_threads, "pad_id": 1}
    return (
        _HEADER
        + backend
        + _common(name, info.dim, max_batch_size, queue_delay_us)
        + f"instance_group [ {{ kind: {kind} count: {instances} }} ]\n"
        + _parameters(_info_parameters(info, max_length))
        + _parameters(options)
    )


def front_config(
    name: str,
    info: ModelInfo,
    max_length: int,
    *,
    max_batch_size: int = 64,
    queue_delay_us: int = 2000,
) -> str:
    """Text of the front model's config (the same on GPU and CPU: tokenising runs on CPU)."""
    return (
        _HEADER
        + 'backend: "python"\n'
        + f"name: {_quote(name + FRONT_SUFFIX)}\n"
        + f"max_batch_size: {max_batch_size}\n"
        + 'input [ { name: "sequence" data_type: TYPE_STRING dims: [ 1 ] } ]\n'
        + f'output [ {{ name: "embedding" data_type: TYPE_FP32 dims: [ {info.dim} ] }} ]\n'
        + f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}\n"
        + "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
        + _parameters(_info_parameters(info, max_length))
        + _parameters({"target_model": name})
    )


def _info_parameters(info: ModelInfo, max_length: int) -> dict[str, object]:
    return dict(zip(INFO_KEYS, (info.name, info.version, info.dim, max_length), strict=True))


def write_model_repository(
    repository: Path,
    name: str,
    info: ModelInfo,
    max_length: int,
    *,
    max_batch_size: int = 64,
    queue_delay_us: int = 2000,
    torch_threads: int = 1,
    front: bool = True,
) -> None:
    """Write (or refresh) the configs and ``model.py`` around ``<repository>/<name>/1/model.pt``.

    With ``front``, also the tokenising front model ``<name>_text`` (strings in).

    Arguments:
        repository: the model repository folder.
        name: the Triton model name (what clients ask for, e.g. ``"rinalmo_search"``).
        info: identity of the exported model, recorded in the configs' ``parameters``.
        max_length: longest input the model was exported for, in tokens (residues +
            ``<cls>`` + ``<eos>``); requests are padded to at most this length, and clients
            warn about longer sequences and send each of them alone.
        max_batch_size: most sequences Triton batches into one model run.
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
        torch_threads: torch intra-op threads per CPU (Python-backend) instance.
        front: also write the front model ``<name>_text``.

    Raises:
        ConfigError: an argument is invalid, or ``model.pt`` is missing.
    """
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"Invalid Triton model name: {name!r} (expected a plain folder name)")
    for label, value in (
        ("max_length", max_length),
        ("max_batch_size", max_batch_size),
        ("embedding dim", info.dim),
        ("torch_threads", torch_threads),
    ):
        if value < 1:
            raise ConfigError(f"Invalid {label!r} value: {value} (expected a positive integer)")
    model_dir = Path(repository) / name
    weights = model_dir / "1" / "model.pt"
    if not weights.is_file():
        raise ConfigError(f"No exported TorchScript model at {weights} (export the model first)")
    (model_dir / "configs").mkdir(parents=True, exist_ok=True)
    options = {"max_batch_size": max_batch_size, "queue_delay_us": queue_delay_us}
    with atomic_write(model_dir / "config.pbtxt") as handle:
        handle.write(embedding_config(name, info, max_length, gpu=True, **options))
    with atomic_write(model_dir / "configs" / f"{CPU_CONFIG_NAME}.pbtxt") as handle:
        handle.write(
            embedding_config(
                name, info, max_length, gpu=False, torch_threads=torch_threads, **options
            )
        )
    shutil.copyfile(BACKEND_SOURCE, model_dir / "1" / "model.py")
    written = [model_dir / "config.pbtxt", model_dir / "configs" / f"{CPU_CONFIG_NAME}.pbtxt"]
    if front:
        front_dir = Path(repository) / (name + FRONT_SUFFIX)
        (front_dir / "1").mkdir(parents=True, exist_ok=True)
        text = front_config(name, info, max_length, **options)
        # the same file twice: the GPU container reads config.pbtxt, 'serve' the cpu_python one
        for path in (
            front_dir / "config.pbtxt",
            front_dir / "configs" / f"{CPU_CONFIG_NAME}.pbtxt",
        ):
            with atomic_write(path) as handle:
                handle.write(text)
            written.append(path)
        shutil.copyfile(FRONT_SOURCE, front_dir / "1" / "model.py")
    # readable by all whatever the umask: a Triton container may run as another user
    for path in written:
        path.chmod(0o644)
    log.info("wrote Triton model %s (%s, dim %d) in %s", name, info.tag, info.dim, repository)
