"""Official RiNALMo checkpoints: strict loading, preset inference, and the published downloads.

An official checkpoint is a plain ``torch.save`` state dict (``rinalmo_giga_pretrained.pt`` and
siblings, Zenodo record 15043668). Loading is strict except for what the search tool never
uses: the masked-LM head (``lm_mask_head.*``) and rotary ``inv_freq`` buffers (absent from the
released files, present in files written by the official ``non_flash`` code; they are checked
against the values this model computes, then dropped). Fine-tuned files whose keys carry an
``lm.`` or ``rinalmo.`` prefix load their language-model part; their task heads are ignored.

Weights are read with ``map_location="cpu", weights_only=True, mmap=True`` into a model built
on the ``meta`` device, so giga (2.6 GB) is never held twice in memory.

Downloads never run implicitly: ``rinalmo-search weights download NAME`` (or
:func:`download_weights`) fetches a file into the cache folder, ``$RINALMO_SEARCH_WEIGHTS_DIR``
or ``~/.cache/rinalmo_search/weights``, and verifies its SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from rinalmo_search.errors import ConfigError, InferenceError
from rinalmo_search.seqio import atomic_write

from .rinalmo import PRESETS, RiNALMo, RiNALMoConfig, build_model

log = logging.getLogger(__name__)

#: Environment variable naming the weights cache folder.
WEIGHTS_DIR_ENV = "RINALMO_SEARCH_WEIGHTS_DIR"
#: Environment variable naming a mirror of the record's files (default: the Zenodo record).
WEIGHTS_URL_ENV = "RINALMO_SEARCH_WEIGHTS_URL"
ZENODO_RECORD = "15043668"
ZENODO_FILES = f"https://zenodo.org/records/{ZENODO_RECORD}/files"

_IGNORED_PREFIXES = ("lm_mask_head.",)
_WRAPPER_PREFIXES = ("lm.", "rinalmo.", "model.", "module.")
_ROTARY_SUFFIX = ".rotary_emb.inv_freq"
_BLOCK_KEY = re.compile(r"^transformer\.blocks\.(\d+)\.")


@dataclass(frozen=True)
class PublishedWeights:
    """One published checkpoint file.

    Attributes:
        name: short name (``giga``, ``mega``, ``micro``).
        filename: file name in the Zenodo record and in the cache folder.
        sha256: expected SHA-256 of the file.
        preset: the model preset the file holds.
    """

    name: str
    filename: str
    sha256: str
    preset: str

    @property
    def url(self) -> str:
        """Download address: the published record, or a mirror (``$RINALMO_SEARCH_WEIGHTS_URL``)."""
        mirror = os.environ.get(WEIGHTS_URL_ENV)
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        return f"{ZENODO_FILES}/{self.filename}?download=1"


# SHA-256 digests of the published files as pinned by other projects that verify them
# (multimolecule's upstream-fixture scripts); Zenodo itself publishes MD5 only.
PUBLISHED: dict[str, PublishedWeights] = {
    "giga": PublishedWeights(
        "giga",
        "rinalmo_giga_pretrained.pt",
        "cd93c3f21eb3e767373c9491192686b5846247bd1110693e453c1dd0f321c0db",
        "giga",
    ),
    "mega": PublishedWeights(
        "mega",
        "rinalmo_mega_pretrained.pt",
        "8e6d5799055dc96a556ac5dc4fbf882b677c86ccfeb072d42578d655890000b0",
        "mega",
    ),
    "micro": PublishedWeights(
        "micro",
        "rinalmo_micro_pretrained.pt",
        "910c73aa722061e8904a9b0d58e1e664c075fa78683fa364fcf099ae3f81ddf9",
        "micro",
    ),
}


def weights_dir() -> Path:
    """The weights cache folder (``$RINALMO_SEARCH_WEIGHTS_DIR`` or the user cache)."""
    configured = os.environ.get(WEIGHTS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "rinalmo_search" / "weights"


def _published(name: str) -> PublishedWeights:
    try:
        return PUBLISHED[name]
    except KeyError:
        known = ", ".join(PUBLISHED)
        raise ConfigError(f"Unknown RiNALMo weights {name!r} (known: {known})") from None


def weights_path(name: str) -> Path:
    """Where the published weights ``name`` live in the cache folder (present or not)."""
    return weights_dir() / _published(name).filename


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """An existing checkpoint file: a path as given, or the cached file of a published name.

    Raises:
        InferenceError: neither a file nor a downloaded published name.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if str(name_or_path) in PUBLISHED:
        cached = weights_path(str(name_or_path))
        if cached.is_file():
            return cached
        raise InferenceError(
            f"RiNALMo {name_or_path} weights are not downloaded: expected {cached} "
            f"(run 'rinalmo-search weights download {name_or_path}', or put "
            f"{PUBLISHED[str(name_or_path)].filename} there; the folder is set by "
            f"${WEIGHTS_DIR_ENV})"
        )
    raise InferenceError(
        f"RiNALMo checkpoint not found: {str(name_or_path)!r} (expected a .pt file or one of "
        f"{', '.join(PUBLISHED)})"
    )


def sha256_of(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download_weights(
    name: str,
    *,
    directory: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download published RiNALMo weights into the cache folder and verify their SHA-256.

    Arguments:
        name: ``giga``, ``mega`` or ``micro``.
        directory: target folder; default :func:`weights_dir`.
        force: download again even when a verified file is present.
        progress: show a progress bar.
        timeout: seconds to wait for the server.

    Returns:
        Path of the verified file.

    Raises:
        ConfigError: unknown name.
        InferenceError: no network, or the file's checksum is wrong (the bad file is removed).
    """
    weights = _published(name)
    folder = Path(directory).expanduser() if directory is not None else weights_dir()
    target = folder / weights.filename
    if target.is_file() and not force:
        found = sha256_of(target)
        if found == weights.sha256:
            log.info("%s already present and verified: %s", weights.filename, target)
            return target
        log.warning("%s has SHA-256 %s (expected %s); downloading again", target, found,
                    weights.sha256)
    try:
        # written beside the target and renamed only once the checksum matches
        with atomic_write(target, "wb") as handle:
            found = _fetch(weights.url, handle, name=weights.name, progress=progress,
                           timeout=timeout)
            if found != weights.sha256:
                raise InferenceError(
                    f"Downloaded {weights.filename} has SHA-256 {found} (expected "
                    f"{weights.sha256}); the file was discarded"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise InferenceError(
            f"Could not download {weights.url} ({error}). Without network, fetch that file "
            f"elsewhere and put it at {target} (the folder is set by ${WEIGHTS_DIR_ENV})"
        ) from error
    log.info("downloaded and verified %s", target)
    return target


def _fetch(url: str, out: IO[bytes], *, name: str, progress: bool, timeout: float) -> str:
    """Copy ``url`` into ``out``; returns the SHA-256 hex digest of what was written."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "rinalmo-search"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, disable=not progress,
                  desc=name) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint file (memory-mapped, tensors only) as a flat state dict.

    Raises:
        InferenceError: the file is not a readable torch checkpoint.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise InferenceError(f"Cannot read RiNALMo checkpoint {path}: {error}") from error
    return unwrap_state_dict(loaded, source=str(path))


def unwrap_state_dict(loaded: Any, *, source: str = "checkpoint") -> dict[str, Tensor]:
    """The language-model state dict inside a loaded checkpoint.

    Accepts a plain state dict, a dict holding one under ``state_dict`` or ``model``
    (Lightning and similar), and fine-tuned layouts whose language-model keys start with
    ``lm.`` or ``rinalmo.`` (or ``model.``/``module.`` wrappers); other keys, the task heads,
    are dropped.
    """
    if isinstance(loaded, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = loaded.get(wrapper)
            if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise InferenceError(
            f"{source} holds no state dict (found {type(loaded).__name__})"
        )
    state = {str(k): v for k, v in loaded.items() if isinstance(v, Tensor)}
    for prefix in _WRAPPER_PREFIXES:
        prefixed = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if "embedding.weight" in prefixed:
            dropped = sorted({k.split(".")[0] for k in state if not k.startswith(prefix)})
            if dropped:
                log.info("%s: using the %r language model; ignoring %s", source, prefix,
                         ", ".join(dropped))
            return prefixed
    return state


def infer_config(state: Mapping[str, Tensor], **overrides: Any) -> RiNALMoConfig:
    """The configuration that a state dict's tensors describe.

    Width, depth, vocabulary, feed-forward size and attention biases come from tensor shapes;
    the head count (not visible in the tensors) is 20, as in every official preset. The name
    is the matching preset, or ``custom``.

    Raises:
        InferenceError: the tensors that fix the shape are missing.
    """
    try:
        alphabet_size, embed_dim = state["embedding.weight"].shape
        ffn_dim = state["transformer.blocks.0.transition.0.linear.weight"].shape[0]
    except KeyError as error:
        raise InferenceError(
            f"Not a RiNALMo state dict: missing {error.args[0]!r} (found keys such as "
            f"{', '.join(sorted(state)[:5]) or 'none'})"
        ) from None
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))}
    num_blocks = max(blocks) + 1
    attn_bias = "transformer.blocks.0.mh_attn.Wqkv.bias" in state
    name = next(
        (n for n, shape in PRESETS.items() if shape == (embed_dim, num_blocks)), "custom"
    )
    config = RiNALMoConfig(
        name=name,
        embed_dim=int(embed_dim),
        num_blocks=num_blocks,
        ffn_dim=int(ffn_dim),
        alphabet_size=int(alphabet_size),
        attn_bias=attn_bias,
    )
    return replace(config, **overrides) if overrides else config


_SPLIT_ATTENTION = re.compile(
    r"^(transformer\.blocks\.\d+\.mh_attn\.)mh_attn\.(to_[qkv]|out_proj|rotary_emb)\.(.+)$"
)


def fuse_split_attention(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert the official code's non-flash attention layout to the fused one.

    With ``use_flash_attn=False`` the official model keeps separate ``to_q``/``to_k``/``to_v``
    projections under ``mh_attn.mh_attn.``; the flash layout (released checkpoints) stacks them
    as ``Wqkv`` (q, k, v in that order, each split into heads the same way). Other keys pass.
    """
    fused: dict[str, Tensor] = {}
    parts: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        match = _SPLIT_ATTENTION.match(key)
        if match is None:
            fused[key] = value
            continue
        prefix, module, leaf = match.groups()
        if module.startswith("to_"):
            parts.setdefault((prefix, leaf), {})[module] = value
        else:
            fused[f"{prefix}{module}.{leaf}"] = value
    for (prefix, leaf), qkv in parts.items():
        if set(qkv) != {"to_q", "to_k", "to_v"}:
            missing = sorted({"to_q", "to_k", "to_v"} - set(qkv))
            raise InferenceError(f"{prefix}mh_attn.{leaf}: missing {', '.join(missing)}")
        fused[f"{prefix}Wqkv.{leaf}"] = torch.cat([qkv["to_q"], qkv["to_k"], qkv["to_v"]])
    return fused


def _drop_unused(state: dict[str, Tensor], config: RiNALMoConfig) -> dict[str, Tensor]:
    kept: dict[str, Tensor] = {}
    expected_inv_freq: Tensor | None = None
    for key, value in state.items():
        if key.startswith(_IGNORED_PREFIXES):
            continue
        if key.endswith(_ROTARY_SUFFIX):
            if expected_inv_freq is None:
                exps = torch.arange(0, config.head_dim, 2, dtype=torch.float32) / config.head_dim
                expected_inv_freq = 1.0 / torch.pow(torch.full_like(exps, config.rope_base), exps)
            if value.shape != expected_inv_freq.shape or not torch.allclose(
                value.float(), expected_inv_freq, rtol=1e-5, atol=1e-7
            ):
                raise InferenceError(
                    f"{key} does not hold rotary frequencies of base {config.rope_base:g} "
                    f"and head size {config.head_dim} (found shape {tuple(value.shape)})"
                )
            continue
        kept[key] = value
    return kept


def load_state_into(model: RiNALMo, state: Mapping[str, Tensor], *, source: str) -> RiNALMo:
    """Load an (official-layout) state dict strictly; error lists missing/unexpected keys.

    Raises:
        InferenceError: keys or shapes differ from the model's.
    """
    cleaned = _drop_unused(fuse_split_attention(state), model.config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(cleaned))
    unexpected = sorted(set(cleaned) - set(expected))
    wrong_shape = [
        f"{k} {tuple(cleaned[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(cleaned))
        if cleaned[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_short_list(unexpected)}")
        if wrong_shape:
            parts.append(f"wrong shapes ({len(wrong_shape)}): {_short_list(wrong_shape)}")
        raise InferenceError(
            f"{source} does not match RiNALMo-{model.config.name} "
            f"(d={model.config.embed_dim}, {model.config.num_blocks} blocks): " + "; ".join(parts)
        )
    on_meta = any(p.is_meta for p in model.parameters())
    model.load_state_dict(cleaned, strict=True, assign=on_meta)
    return model


def _short_list(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")


def load_backbone(
    checkpoint: str | Path | Mapping[str, Tensor],
    *,
    dtype: torch.dtype = torch.float32,
    config: RiNALMoConfig | None = None,
    **config_overrides: Any,
) -> RiNALMo:
    """A RiNALMo in eval mode from an official-layout checkpoint (path, published name or dict).

    The preset is inferred from the tensors (:func:`infer_config`).

    Arguments:
        checkpoint: a ``.pt`` path, a published name (``giga``, … — must be downloaded), or an
            already loaded state dict.
        dtype: parameter dtype (float32 for exact features; bfloat16 halves memory and time).
        config: the exact configuration (default: inferred from the tensors).
        **config_overrides: fields of :class:`RiNALMoConfig` to change (e.g. ``num_heads``).

    Raises:
        InferenceError: unreadable file, or keys/shapes that do not match.
    """
    if isinstance(checkpoint, Mapping):
        source = "state dict"
        state = unwrap_state_dict(checkpoint, source=source)
    else:
        path = resolve_checkpoint(checkpoint)
        source = str(path)
        state = read_state_dict(path)
    state = fuse_split_attention(state)
    if config is None:
        config = infer_config(state, **config_overrides)
    elif config_overrides:
        config = replace(config, **config_overrides)
    model = build_model(config, device="meta")
    load_state_into(model, state, source=source)
    if dtype != torch.float32 or any(p.dtype != dtype for p in model.parameters()):
        model = model.to(dtype)
    log.debug("loaded RiNALMo-%s (%d blocks, d=%d) from %s", config.name, config.num_blocks,
              config.embed_dim, source)
    return model.eval()


def official_state_dict(model: RiNALMo) -> dict[str, Tensor]:
    """The model's weights in the official checkpoint layout (for tests and exports).

    Identical to ``model.state_dict()`` (the keys are the official ones already), with an
    ``lm_mask_head`` of matching shape added so the file looks like a released one.
    """
    d = model.config.embed_dim
    n = model.config.alphabet_size
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state["lm_mask_head.linear1.weight"] = torch.randn(d, d, generator=generator) * 0.02
    state["lm_mask_head.linear1.bias"] = torch.zeros(d)
    state["lm_mask_head.layer_norm.weight"] = torch.ones(d)
    state["lm_mask_head.layer_norm.bias"] = torch.zeros(d)
    state["lm_mask_head.linear2.weight"] = torch.randn(n, d, generator=generator) * 0.02
    state["lm_mask_head.linear2.bias"] = torch.zeros(n)
    return state
