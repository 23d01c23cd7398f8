"""TorchScript export of an embedder: one scripted module for Triton and the CPU backend.

The module takes ``input_ids`` int64 ``[B, L]`` and ``attention_mask`` int64 ``[B, L]``
(1 = real token, ``<cls>`` and ``<eos>`` included; 0 = padding) and returns float32 ``[B, D]``
unit rows (D = 512 for a homology head). It is *scripted*, not traced: a trace would freeze
the sequence length into the rotary tables and the padding branch.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rinalmo_search.errors import ConfigError

from .alphabet import batch_encode
from .base import Embedder
from .lora import has_lora, merge_lora

log = logging.getLogger(__name__)


def export_module(embedder_or_module: Embedder | nn.Module) -> nn.Module:
    """The plain (eager) module that export scripts: LoRA merged, float32, eval mode, on CPU.

    A :class:`~rinalmo_search.embedder.compact.CompactEmbedder` becomes its
    :class:`~rinalmo_search.embedder.compact_torch.CompactTorchModule` (same vectors from
    token ids).

    Raises:
        ConfigError: the embedder is neither a torch model nor a compact model (e.g. the k-mer
            baseline).
    """
    from .compact import CompactEmbedder
    from .compact_torch import to_torch_module
    from .local import TorchEmbedder

    if isinstance(embedder_or_module, TorchEmbedder):
        module: nn.Module = embedder_or_module.model
    elif isinstance(embedder_or_module, CompactEmbedder):
        # k-mer counting and both projections as torch ops (numpy stays the local path)
        module = to_torch_module(embedder_or_module)
    elif isinstance(embedder_or_module, nn.Module):
        module = embedder_or_module
    else:
        raise ConfigError(
            f"Cannot export {type(embedder_or_module).__name__}: only RiNALMo (torch) models "
            "and compact models can be exported to TorchScript"
        )
    module = copy.deepcopy(module)
    if has_lora(module):
        merge_lora(module)
    return module.to(device="cpu", dtype=torch.float32).eval()


def script_module(embedder_or_module: Embedder | nn.Module) -> torch.jit.ScriptModule:
    """Script the export module (see :func:`export_module`)."""
    module = export_module(embedder_or_module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    with warnings.catch_warnings():
        # deprecated in favour of torch.export, but TorchScript is what Triton's libtorch
        # backend loads
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return torch.jit.script(module)


def export_torchscript(embedder_or_module: Embedder | nn.Module, path: str | Path) -> Path:
    """Write the embedder as one scripted TorchScript file.

    Arguments:
        embedder_or_module: a :class:`~rinalmo_search.embedder.local.TorchEmbedder` or a module
            with ``forward(input_ids, attention_mask)``.
        path: target file (``.../1/model.pt`` in a Triton repository).

    Returns:
        The path written.
    """
    scripted = script_module(embedder_or_module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    scripted.save(str(temp))
    temp.replace(path)
    log.info("wrote TorchScript module %s", path)
    return path


def parity(
    eager: nn.Module,
    scripted: torch.jit.ScriptModule,
    sequences: list[str],
) -> float:
    """Max abs difference between eager and scripted outputs on one padded batch."""
    ids, mask = batch_encode(sequences)
    with torch.inference_mode():
        a = eager(torch.from_numpy(ids), torch.from_numpy(mask))
        b = scripted(torch.from_numpy(ids), torch.from_numpy(mask))
    return float(np.abs(a.numpy() - b.numpy()).max())


def local_parity(
    embedder: Embedder, scripted: torch.jit.ScriptModule, sequences: list[str]
) -> float:
    """Max abs difference between the embedder's own ``embed`` and the scripted module.

    For a compact model this compares the numpy path with the exported torch module.
    """
    ids, mask = batch_encode(sequences)
    with torch.inference_mode():
        served = scripted(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return float(np.abs(embedder.embed(sequences) - served).max())
