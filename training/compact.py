"""Training the compact default model: a learned linear view of multi-pattern k-mer spectra.

The model (:class:`rinalmo_search.embedder.compact.CompactEmbedder`) concatenates a fixed
random projection of its k-mer features with a learned linear map to ``learned_dim``
dimensions. This module trains that map with the training pipeline's supervised contrastive
loss and family-balanced clan-aware sampler on the *training* families of a prepared split,
with divergence-mimicking augmentation (:func:`rinalmo_search.simulate.diverge`: every
sequence re-mutated at each step). Every ``eval_every`` steps it scores stage-1 retrieval
(exact cosine, no re-ranking, :mod:`rinalmo_search.evaluation`) of validation-family queries
for several mixes of the two views, keeps the best (validation AP) and writes the model file.

``rinalmo-search train --config training/configs/compact-kmer.toml --split-dir SPLIT`` runs it
(the config's ``kind = "compact"`` selects this trainer).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rinalmo_search.errors import ConfigError
from rinalmo_search.seqio import atomic_write

from .config import CompactTrainConfig

log = logging.getLogger(__name__)

VALIDATION_LOG = "validation.json"


@dataclass
class CompactResult:
    """What a compact training run produced.

    Attributes:
        model_path: the model file written.
        validation_ap: stage-1 validation AP of the chosen step and mix.
        learned_weight: the chosen mix (weight of the learned view).
        table: one row per evaluated (step, mix): macro AP, sensitivity and recall by bucket.
    """

    model_path: Path
    validation_ap: float
    learned_weight: float
    table: list[dict[str, float]] = field(default_factory=list)


def _mixed(fixed: np.ndarray, learned: np.ndarray, weight: float) -> np.ndarray:
    """Vectors whose cosine is ``(1 - weight) * cos_fixed + weight * cos_learned``."""
    return np.concatenate([np.sqrt(1 - weight) * fixed, np.sqrt(weight) * learned], axis=1)


def stage1_scores(
    split: Any, queries: list[Any], fixed: np.ndarray, learned: np.ndarray,
    weights: list[float], *, top_k: int = 1000,
) -> dict[float, dict[str, dict[str, float]]]:
    """Validation stage-1 metrics (the evaluation protocol's) for several learned-view weights.

    Arguments:
        split: the :class:`~rinalmo_search.evaluation.split.RetrievalSet` (database = all).
        queries: query records (members of the database).
        fixed: unit vectors of the fixed view of every database record.
        learned: unit vectors of the learned view, same rows.
        weights: learned-view weights to score.
        top_k: shortlist per query (the query itself is dropped by the labelling).
    """
    from rinalmo_search.evaluation.protocol import ToolRun, exact_search, score_run

    index = {r.id: i for i, r in enumerate(split.records)}
    rows = [index[q.id] for q in queries]
    results = {}
    for weight in weights:
        database = _mixed(fixed, learned, weight)
        ranked = exact_search(database[rows], database, split.records, top_k=top_k + 1)
        hits = {q.id: [(h.target_id, h.score) for h in hs]
                for q, hs in zip(queries, ranked, strict=True)}
        run = ToolRun(f"w={weight}", hits, {}, len(queries), 1)
        results[weight] = score_run(run, queries, split)
    return results


def train_compact(config: CompactTrainConfig) -> CompactResult:
    """Train the learned view as ``config`` says and write ``output_dir/model`` + the log.

    Raises:
        ConfigError: a validation set without queries, or patterns the model refuses.
        InputError: an unreadable split.
    """
    import torch
    from rinalmo_search.embedder.compact import (
        DEFAULT_WEIGHTS,
        CompactConfig,
        CompactEmbedder,
        save_compact,
    )

    from rinalmo_search.evaluation.split import load_retrieval_set
    from rinalmo_search.simulate import diverge

    from .loss import supervised_contrastive_loss
    from .sampler import ClanAwareBatchSampler

    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    split = load_retrieval_set(config.split_dir)
    model_config = CompactConfig(patterns=list(config.patterns),
                                 block_weights=list(config.block_weights),
                                 learned_dim=config.learned_dim, learned_weight=0.5)
    base = CompactEmbedder(CompactConfig(patterns=list(config.patterns),
                                         block_weights=list(config.block_weights)))
    train = [r for r in split.records if split.family_split[r.family] == "train"]
    sampler = ClanAwareBatchSampler(
        [r.family for r in train], split.family_clan,
        families_per_batch=config.sampler.families_per_batch,
        per_family=config.sampler.per_family, hard_negatives=config.sampler.hard_negatives,
        seed=config.seed,
    )
    weight = torch.nn.Parameter(
        torch.from_numpy(base._projection[:, : config.learned_dim].copy()) * 1.0
    )
    optimiser = torch.optim.AdamW([weight], lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / config.warmup_steps)
        * 0.5 * (1 + np.cos(np.pi * s / config.steps))
    )
    family_ids = {f: i for i, f in enumerate(sorted({r.family for r in train}))}
    queries = split.queries("validation", max_per_family=config.eval_queries_per_family)
    if not queries:
        raise ConfigError(f"{split.source}: no validation query (expected a validation family "
                          "with at least 4 members)")
    chunks = range(0, len(split.records), 2048)
    fixed_db = np.concatenate([base.embed([r.sequence for r in split.records[i : i + 2048]])
                               for i in chunks])
    features_db = [base.feature_matrix([r.sequence for r in split.records[i : i + 2048]])
                   for i in chunks]
    table: list[dict[str, float]] = []
    best: tuple[float, float, np.ndarray | None] = (-1.0, 0.0, None)

    def validate(step: int) -> None:
        nonlocal best
        w = weight.detach().numpy()
        learned_db = np.concatenate([x @ w for x in features_db])
        learned_db /= np.maximum(np.linalg.norm(learned_db, axis=1, keepdims=True), 1e-12)
        mixes = [0.0, *config.mixes] if step == 0 else list(config.mixes)
        for mix, summary in stage1_scores(split, queries, fixed_db, learned_db, mixes).items():
            table.append({"step": step, "learned_weight": mix,
                          **{f"{k}_{b}": round(v[k], 4) for b, v in summary.items()
                             for k in ("ap", "sens_first_fp", "recall")}})
            log.info("step %d mix %.2f: val AP %.3f (<20 %.3f, 20-99 %.3f, >=100 %.3f) "
                     "sens1FP %.3f", step, mix, summary["all"]["ap"], summary["<20"]["ap"],
                     summary["20-99"]["ap"], summary[">=100"]["ap"],
                     summary["all"]["sens_first_fp"])
            if mix > 0 and summary["all"]["ap"] > best[0]:
                best = (summary["all"]["ap"], mix, w.copy())

    validate(0)
    step, epoch, start = 0, 0, time.time()
    while step < config.steps:
        sampler.set_epoch(epoch)
        for batch in sampler:
            sequences = [diverge(train[i].sequence, rng, max_substitution=config.max_substitution,
                                 max_indel=config.max_indel) for i in batch]
            labels = torch.tensor([family_ids[train[i].family] for i in batch])
            x = torch.from_numpy(base.feature_matrix(sequences))
            z = torch.nn.functional.normalize(x @ weight, dim=1)
            loss = supervised_contrastive_loss(z, labels, temperature=config.temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step % 50 == 0:
                log.info("step %d loss %.4f (%.0f s)", step, loss.item(), time.time() - start)
            if step % config.eval_every == 0 or step == config.steps:
                validate(step)
            if step >= config.steps:
                break
        epoch += 1
    ap, mix, learned = best
    model_config.learned_weight = mix
    log.info("best validation AP %.4f at learned weight %.2f", ap, mix)
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"model{DEFAULT_WEIGHTS.suffix}"
    metadata = {
        "split": {"dir": str(config.split_dir), "fingerprint": split.fingerprint,
                  "families": {"train": split.families("train")}},
        "training": config.plain(),
        "validation_ap": ap,
        "train_seconds": round(time.time() - start),
    }
    save_compact(model_path, model_config, learned, name=config.name, version=config.version,
                 metadata=metadata)
    with atomic_write(out / VALIDATION_LOG) as handle:
        json.dump(table, handle, indent=1)
    return CompactResult(model_path, ap, mix, table)
