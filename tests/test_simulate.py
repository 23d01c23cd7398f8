"""Simulated divergence: the one mutation model every caller shares."""

from __future__ import annotations

import numpy as np

from rinalmo_search.simulate import mutate


def test_mutate_applies_the_requested_divergence() -> None:
    rng = np.random.default_rng(1)
    source = "".join(rng.choice(list("ACGU"), size=5000))
    copy = mutate(source, rng, rate=0.15)
    assert copy != source and set(copy) <= set("ACGU")
    assert 0.9 * len(source) < len(copy) < 1.1 * len(source)
    assert mutate(source, rng, rate=0.0) == source


def test_mutate_rates() -> None:
    """Substitutions at ``rate``, insertions and deletions at ``rate / 10`` each."""
    rng = np.random.default_rng(2)
    source = "A" * 200_000
    copy = mutate(source, rng, rate=0.2)
    # kept substituted positions (0.2 - 0.02) plus insertions (0.02), each a random base: 3/4
    # of them are not A
    assert abs(copy.count("A") / len(source) - (1 - 0.2 * 0.75)) < 0.005
    assert abs(len(copy) / len(source) - 1.0) < 0.005  # deletions and insertions balance
    same_length = mutate(source, rng, rate=0.0)
    assert same_length == source


def test_mutate_is_deterministic() -> None:
    first = mutate("GGGAGCUCAGCCGGUAGAGC", np.random.default_rng(5), rate=0.3)
    assert first == mutate("GGGAGCUCAGCCGGUAGAGC", np.random.default_rng(5), rate=0.3)
    assert first != mutate("GGGAGCUCAGCCGGUAGAGC", np.random.default_rng(6), rate=0.3)
