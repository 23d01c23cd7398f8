"""Fitting stage 2 for one model: the alignment E-value constants and the merged score.

Two fits, both on a prepared split and never on its test families
(:class:`rinalmo_search.rerank.RerankCalibration` holds the result):

* **Karlin–Altschul λ and K** of the Smith–Waterman scheme, by maximum likelihood of the
  Gumbel law ``P(S >= x) = 1 - exp(-K m n e^(-λx))`` on the raw scores of unrelated pairs:
  sequences of training families of different clans (``m``, ``n``: their lengths). For a given
  λ the likelihood's best ln K is closed-form, so only λ is searched (SciPy).
* **The merged score** ``sigmoid(a * alignment + b * z + c)``: scikit-learn's logistic
  regression on the labelled shortlists of validation-family queries (same family 1, another
  clan 0, same clan other family left out, as the protocol labels), where ``alignment`` is
  ``-log10(E)`` with the constants of the first fit and ``z`` the cosine standardised over the
  query's shortlist, exactly as :func:`rinalmo_search.rerank.merge_scores` computes them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rinalmo_search.embedder.base import Embedder
from rinalmo_search.errors import ConfigError
from rinalmo_search.rerank import RerankCalibration, alignment_significance, sw_scores

from .protocol import ToolRun, embed_in_batches, exact_search, score_run
from .split import RetrievalSet

log = logging.getLogger(__name__)

#: Inverse L2 strength of the logistic regression: weak, the fit has 3 parameters and
#: hundreds of thousands of pairs.
LOGISTIC_C = 1e4


@dataclass
class CalibrationResult:
    """A fitted calibration and what it was fitted on.

    Attributes:
        calibration: λ, ln K and the merge coefficients.
        null_pairs: unrelated pairs of the Gumbel fit.
        pairs: labelled shortlist pairs of the logistic fit.
        positives: same-family pairs among them.
        validation_ap: validation macro AP of the alignment-only, embedding-only and merged
            rankings of the same shortlists.
    """

    calibration: RerankCalibration
    null_pairs: int
    pairs: int
    positives: int
    validation_ap: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        """The model file's ``"rerank"`` section: the calibration and how it was fitted."""
        return {**self.calibration.to_metadata(), "null_pairs": self.null_pairs,
                "pairs": self.pairs, "positives": self.positives,
                "validation_ap": self.validation_ap}


def null_scores(
    split: RetrievalSet, *, queries: int = 300, targets: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw Smith–Waterman scores of unrelated training pairs (different clans).

    Returns:
        ``(scores, query_lengths, target_lengths)``, one entry per pair.
    """
    train = [r for r in split.records if split.family_split.get(r.family) == "train"]
    group = np.array([r.clan or r.family for r in train])
    if len(set(group)) < 2:
        raise ConfigError(f"{split.source}: the Gumbel fit needs training families of at "
                          "least two clans")
    rng = np.random.default_rng(seed)
    scores, query_lengths, target_lengths = [], [], []
    for index in rng.choice(len(train), size=min(queries, len(train)), replace=False):
        others = np.flatnonzero(group != group[index])
        chosen = rng.choice(others, size=min(targets, others.size), replace=False)
        sequences = [train[i].sequence for i in chosen]
        scores.append(sw_scores(train[index].sequence, sequences))
        query_lengths.append(np.full(len(chosen), len(train[index].sequence)))
        target_lengths.append(np.array([len(s) for s in sequences]))
    return (np.concatenate(scores), np.concatenate(query_lengths).astype(np.float64),
            np.concatenate(target_lengths).astype(np.float64))


def fit_gumbel(
    scores: np.ndarray, query_lengths: np.ndarray, target_lengths: np.ndarray
) -> tuple[float, float]:
    """Maximum-likelihood ``(λ, ln K)`` of local alignment scores of unrelated pairs.

    With ``u = λS - ln K - ln(mn)`` the log density is ``ln λ - u - e^(-u)``; for fixed λ the
    best ``ln K = ln N - ln Σ m n e^(-λS)``, so the profile likelihood is maximised over λ.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    scores = np.asarray(scores, dtype=np.float64)
    log_area = np.log(query_lengths) + np.log(target_lengths)
    n = scores.size

    def log_k(lam: float) -> float:
        return float(math.log(n) - logsumexp(log_area - lam * scores))

    def negative_log_likelihood(lam: float) -> float:
        u = lam * scores - log_k(lam) - log_area
        return -float(np.sum(math.log(lam) - u - np.exp(-u)))

    best = minimize_scalar(negative_log_likelihood, bounds=(1e-3, 10.0), method="bounded",
                           options={"xatol": 1e-7})
    lam = float(best.x)
    return lam, log_k(lam)


def shortlist_pairs(
    split: RetrievalSet,
    embedder: Embedder,
    calibration: RerankCalibration,
    *,
    queries_per_family: int = 6,
    top_k: int = 1000,
) -> tuple[list, np.ndarray, np.ndarray, list[int]]:
    """Validation queries' shortlists, aligned and labelled.

    Returns:
        ``(queries, features, labels, owner)``: per pair ``[alignment, z]``, its label and the
        index of its query; ``queries[i]`` is ``(record, [(target_id, alignment, z)...])`` over
        the whole shortlist (the query itself included), for ranking.
    """
    queries = split.queries("validation", max_per_family=queries_per_family)
    if not queries:
        raise ConfigError(f"{split.source}: no validation query (expected a validation family "
                          "with at least 4 members)")
    database = split.records
    vectors = embed_in_batches(embedder, database, desc="embedding database")
    shortlists = exact_search(embed_in_batches(embedder, queries), vectors, database,
                              top_k=top_k + 1)
    rows, labels, owner, ranked = [], [], [], []
    for number, (query, hits) in enumerate(zip(queries, shortlists, strict=True)):
        raw = sw_scores(query.sequence, [h.sequence for h in hits])
        alignment = alignment_significance(raw, len(query.sequence), calibration)
        cosine = np.array([h.score for h in hits], dtype=np.float64)
        z = (cosine - cosine.mean()) / (cosine.std() + 1e-6)
        ranked.append((query, [(h.target_id, float(a), float(s))
                               for h, a, s in zip(hits, alignment, z, strict=True)]))
        for hit, aln, score in zip(hits, alignment, z, strict=True):
            if hit.target_id == query.id:
                continue
            if hit.family == query.family:
                labels.append(1.0)
            elif query.clan and hit.clan == query.clan:
                continue
            else:
                labels.append(0.0)
            rows.append((aln, score))
            owner.append(number)
    return ranked, np.asarray(rows), np.asarray(labels), owner


def fit_merge(features: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """``(a, b, c)`` of ``P(same family) = sigmoid(a * alignment + b * z + c)``."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        raise ConfigError("The merge fit needs both same-family and other-clan pairs "
                          f"(found {int(labels.sum())} of {labels.size} positive)")
    model = LogisticRegression(C=LOGISTIC_C, max_iter=1000).fit(features, labels)
    a, b = (float(v) for v in model.coef_[0])
    return a, b, float(model.intercept_[0])


def _ranking_ap(ranked: Sequence, split: RetrievalSet, weights: tuple[float, float, float],
                label: str) -> float:
    a, b, c = weights
    hits = {query.id: sorted(((t, a * aln + b * z + c) for t, aln, z in shortlist),
                             key=lambda item: -item[1])
            for query, shortlist in ranked}
    queries = [query for query, _ in ranked]
    return score_run(ToolRun(label, hits, {}, len(queries), 1), queries, split)["all"]["ap"]


def calibrate(
    split: RetrievalSet,
    embedder: Embedder,
    *,
    queries_per_family: int = 6,
    top_k: int = 1000,
    null_queries: int = 300,
    null_targets: int = 100,
    seed: int = 0,
    fit_constants: bool = True,
    base: RerankCalibration | None = None,
) -> CalibrationResult:
    """Fit λ and ln K (unless ``fit_constants`` is False: then ``base``'s are kept), then the
    merge coefficients, for ``embedder`` on ``split``.

    Raises:
        ConfigError: a split without validation queries or without two training clans.
    """
    base = base or RerankCalibration()
    lam, log_k, null_pairs = base.lambda_, base.log_k, 0
    if fit_constants:
        scores, m, n = null_scores(split, queries=null_queries, targets=null_targets, seed=seed)
        lam, log_k = fit_gumbel(scores, m, n)
        null_pairs = int(scores.size)
        log.info("Gumbel fit on %d unrelated pairs: lambda %.4f, ln K %.3f", null_pairs, lam,
                 log_k)
    constants = RerankCalibration(lam, log_k, base.merge)
    ranked, features, labels, _owner = shortlist_pairs(
        split, embedder, constants, queries_per_family=queries_per_family, top_k=top_k)
    merge = fit_merge(features, labels)
    log.info("merge fit on %d pairs (%d positive): a %.4f b %.4f c %.4f", labels.size,
             int(labels.sum()), *merge)
    validation_ap = {
        label: round(_ranking_ap(ranked, split, weights, label), 4)
        for label, weights in (("alignment", (1.0, 0.0, 0.0)), ("embedding", (0.0, 1.0, 0.0)),
                               ("merged", merge))
    }
    return CalibrationResult(RerankCalibration(lam, log_k, merge), null_pairs, int(labels.size),
                             int(labels.sum()), validation_ap)
