"""Tokenisation: the official 22-token alphabet, padding, length buckets."""

from __future__ import annotations

import numpy as np
import pytest
from rinalmo_search.embedder.alphabet import (
    TOKENS,
    batch_encode,
    bucket_length,
    decode,
    encode,
    length_batches,
)


def test_alphabet_is_the_official_one() -> None:
    assert len(TOKENS) == 22
    assert TOKENS[:5] == ("<cls>", "<pad>", "<eos>", "<unk>", "<mask>")
    assert "".join(TOKENS[5:]) == "ACGTIRYKMSWBDHVN-"


def test_encode_exact_ids() -> None:
    # <cls> A C G T(U) N - <eos>
    assert encode("ACGUN-").tolist() == [0, 5, 6, 7, 8, 20, 21, 2]


def test_u_is_t_and_case_is_ignored() -> None:
    assert encode("acgu").tolist() == encode("ACGT").tolist() == [0, 5, 6, 7, 8, 2]


def test_iupac_codes_keep_their_tokens_and_unknown_is_unk() -> None:
    ids = encode("RYKMSWBDHVIx.").tolist()
    assert ids[1:-1] == [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 9, 3, 3]


def test_decode_inverts_encode_up_to_u() -> None:
    assert decode(encode("GGAUCCn")) == "GGATCCN"


def test_batch_encode_pads_right_with_mask() -> None:
    ids, mask = batch_encode(["AC", "GGGG"])
    assert ids.tolist() == [[0, 5, 6, 2, 1, 1], [0, 7, 7, 7, 7, 2]]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert ids.dtype == np.int64 and mask.dtype == np.int64


def test_batch_encode_pad_to_and_its_error() -> None:
    ids, _ = batch_encode(["AC"], pad_to=8)
    assert ids.shape == (1, 8)
    with pytest.raises(ValueError, match=r"'pad_to' value: 3 \(expected at least 4\)"):
        batch_encode(["AC"], pad_to=3)


def test_bucket_length_rounds_up() -> None:
    assert [bucket_length(n) for n in (1, 32, 33, 100)] == [32, 32, 64, 128]


def test_length_batches_cover_every_index_once_and_respect_limits() -> None:
    lengths = [5, 300, 12, 7, 300, 50, 1, 120]
    batches = list(length_batches(lengths, batch_size=3, max_tokens=700))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        width = max(lengths[i] for i in batch) + 2
        assert len(batch) == 1 or len(batch) * width <= 700
    # longest first, and similar lengths together
    assert batches[0] == [1, 4]
