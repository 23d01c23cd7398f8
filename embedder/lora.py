"""LoRA adapters (Hu et al. 2021) for fine-tuning RiNALMo, as a small module of our own.

``apply_lora`` swaps chosen :class:`torch.nn.Linear` layers for :class:`LoRALinear`, which adds
``(alpha / r) · B A x`` to the frozen base output. A is Kaiming-uniform and B zero, so an
adapted model equals the base model at initialisation. ``merge_lora`` folds the update into
plain ``nn.Linear`` weights, giving back the official key layout for saving and export.

The fused ``Wqkv`` projection gets one adapter *per* q, k and v (``splits=3``), which is what
separate q/k/v adapters would be. SwiGLU has two input linears (``linear``, ``linear_gate``)
and one output linear (``transition.2``); all three are targeted by default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

#: Default targets: attention q/k/v (fused) and the feed-forward linears of RiNALMo blocks.
DEFAULT_TARGETS: tuple[str, ...] = (
    "mh_attn.Wqkv",
    "transition.0.linear",
    "transition.0.linear_gate",
    "transition.2",
)
_SPLITS = {"Wqkv": 3}


class LoRALinear(nn.Module):
    """A frozen linear layer plus low-rank updates.

    Arguments:
        base: the layer to adapt (its parameters are frozen).
        r: rank.
        alpha: scaling numerator (the update is multiplied by ``alpha / r``).
        splits: number of equal output chunks with their own adapter (3 for fused q/k/v).
        dropout: dropout on the adapter input (training only).
    """

    def __init__(
        self, base: nn.Linear, *, r: int = 16, alpha: float = 32.0, splits: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"Invalid LoRA rank 'r': {r} (expected a positive integer)")
        if base.out_features % splits:
            raise ValueError(
                f"Cannot split {base.out_features} outputs into {splits} LoRA adapters"
            )
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        self.r = r
        self.alpha = float(alpha)
        self.scaling = float(alpha) / r
        self.splits = splits
        chunk = base.out_features // splits
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(splits, r, base.in_features, device=device,
                                               dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(splits, chunk, r, device=device, dtype=dtype))
        for index in range(splits):
            nn.init.kaiming_uniform_(self.lora_A.data[index], a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    @property
    def weight(self) -> Tensor:
        """The frozen base weight (not including the update), as on the wrapped layer.

        Code that reads ``layer.weight`` for its dtype or device (the homology head's
        ``input_proj``) keeps working when the layer is adapted.
        """
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        """The base bias (None when the wrapped layer has none)."""
        return self.base.bias

    def delta_weight(self) -> Tensor:
        """The weight update ``(out_features, in_features)``."""
        return torch.cat([self.lora_B[i] @ self.lora_A[i] for i in range(self.splits)]) \
            * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        out = self.base(x)
        low = torch.einsum("...i,sri->...sr", self.dropout(x), self.lora_A)
        update = torch.einsum("...sr,sor->...so", low, self.lora_B)
        return out + update.flatten(-2) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain linear layer holding ``W + ΔW`` (and the base bias)."""
        merged = nn.Linear(self.base.in_features, self.base.out_features,
                           bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(self.base.weight + self.delta_weight().to(self.base.weight.dtype))
            if self.base.bias is not None:
                merged.bias.copy_(self.base.bias)
        return merged


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def apply_lora(
    module: nn.Module,
    *,
    r: int = 16,
    alpha: float = 32.0,
    targets: Sequence[str] = DEFAULT_TARGETS,
    dropout: float = 0.0,
    freeze_base: bool = True,
) -> nn.Module:
    """Replace the target linear layers of ``module`` by :class:`LoRALinear` (in place).

    Arguments:
        module: the model (e.g. a RiNALMo backbone).
        r: adapter rank.
        alpha: adapter scaling numerator.
        targets: module-name suffixes to adapt (``"mh_attn.Wqkv"`` matches every block's).
        dropout: adapter input dropout.
        freeze_base: also freeze every other parameter of ``module`` (usual for LoRA).

    Returns:
        The same module, adapted.

    Raises:
        ValueError: no linear layer matched ``targets``.
    """
    if freeze_base:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    chosen = [
        (name, child) for name, child in module.named_modules()
        if isinstance(child, nn.Linear) and _matches(name, targets)
    ]
    if not chosen:
        raise ValueError(f"No linear layer of the module matches the LoRA targets {targets!r}")
    for name, child in chosen:
        parent_name, _, attribute = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        adapter = LoRALinear(child, r=r, alpha=alpha, splits=_SPLITS.get(attribute, 1),
                             dropout=dropout)
        setattr(parent, attribute, adapter)
    return module


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold every :class:`LoRALinear` of ``module`` back into a plain ``nn.Linear`` (in place).

    Returns:
        The same module, with the original (official) state-dict keys.
    """
    for name, child in list(module.named_modules()):
        if isinstance(child, LoRALinear):
            parent_name, _, attribute = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attribute, child.merged())
    return module


def lora_parameters(module: nn.Module) -> Iterator[nn.Parameter]:
    """The adapter parameters (``lora_A``, ``lora_B``) of every :class:`LoRALinear`."""
    for child in module.modules():
        if isinstance(child, LoRALinear):
            yield child.lora_A
            yield child.lora_B


def has_lora(module: nn.Module) -> bool:
    """Whether ``module`` contains LoRA adapters."""
    return any(isinstance(child, LoRALinear) for child in module.modules())
