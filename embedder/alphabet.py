"""RiNALMo's alphabet: the 22 official tokens, batch tokenisation with padding, length buckets.

The token order is the official one (``rinalmo/data/alphabet.py``): five specials first, then
the nucleotides and IUPAC codes. Sequences are upper-cased and U is read as T, exactly as the
official encoder does, so ``"acgu"`` and ``"ACGT"`` give the same ids. Any other character
becomes ``<unk>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

#: Special tokens, in official order (ids 0..4).
SPECIAL_TOKENS: tuple[str, ...] = ("<cls>", "<pad>", "<eos>", "<unk>", "<mask>")
#: Residue tokens, in official order (ids 5..21).
RESIDUE_TOKENS: tuple[str, ...] = tuple("ACGTIRYKMSWBDHVN-")
#: All 22 tokens; a token's id is its index here.
TOKENS: tuple[str, ...] = SPECIAL_TOKENS + RESIDUE_TOKENS

CLS_IDX = 0
PAD_IDX = 1
EOS_IDX = 2
UNK_IDX = 3
MASK_IDX = 4

# byte → id lookup table; upper and lower case letters map alike, U maps to T
_LOOKUP = np.full(256, UNK_IDX, dtype=np.int64)
for _index, _token in enumerate(RESIDUE_TOKENS, start=len(SPECIAL_TOKENS)):
    _LOOKUP[ord(_token)] = _index
    _LOOKUP[ord(_token.lower())] = _index
_LOOKUP[ord("U")] = _LOOKUP[ord("T")]
_LOOKUP[ord("u")] = _LOOKUP[ord("T")]


def encode(sequence: str) -> np.ndarray:
    """Token ids of one sequence, wrapped as ``<cls> residues <eos>``.

    Arguments:
        sequence: nucleotides in any case; U and T are the same token, other characters
            (IUPAC codes, ``-``) keep their own token, anything unknown becomes ``<unk>``.

    Returns:
        int64 array of length ``len(sequence) + 2``.
    """
    codes = np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)
    ids = np.empty(len(codes) + 2, dtype=np.int64)
    ids[0] = CLS_IDX
    ids[1:-1] = _LOOKUP[codes]
    ids[-1] = EOS_IDX
    return ids


def decode(ids: Sequence[int] | np.ndarray) -> str:
    """Residue string of token ids (specials and padding dropped; T stays T)."""
    return "".join(TOKENS[i] for i in np.asarray(ids).tolist() if i >= len(SPECIAL_TOKENS))


def batch_encode(
    sequences: Sequence[str], *, pad_to: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise sequences into one right-padded batch.

    Arguments:
        sequences: the sequences of the batch.
        pad_to: total token length to pad to (at least the longest sequence + 2); by default
            the longest sequence + 2.

    Returns:
        ``(input_ids, attention_mask)``, both int64 of shape ``(n, length)``; the mask is 1 on
        real tokens (``<cls>`` and ``<eos>`` included) and 0 on padding.

    Raises:
        ValueError: ``pad_to`` is shorter than the longest tokenised sequence.
    """
    encoded = [encode(seq) for seq in sequences]
    longest = max((len(ids) for ids in encoded), default=2)
    length = longest if pad_to is None else pad_to
    if length < longest:
        raise ValueError(f"Invalid 'pad_to' value: {pad_to} (expected at least {longest})")
    input_ids = np.full((len(encoded), length), PAD_IDX, dtype=np.int64)
    attention_mask = np.zeros((len(encoded), length), dtype=np.int64)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def bucket_length(n_tokens: int, *, step: int = 32) -> int:
    """Padded length for a batch whose longest member has ``n_tokens`` tokens.

    Rounding lengths up to a multiple of ``step`` keeps the number of distinct tensor shapes
    small (Triton only batches requests of one shape; caches stay warm).
    """
    if step < 1:
        raise ValueError(f"Invalid 'step' value: {step} (expected a positive integer)")
    return -(-n_tokens // step) * step


def length_batches(
    lengths: Sequence[int], *, batch_size: int = 8, max_tokens: int | None = None
) -> Iterator[list[int]]:
    """Group sequence indices into batches of similar length.

    Indices are sorted by length (longest first, so memory problems show up at once) and cut
    into batches of at most ``batch_size`` sequences and, when given, at most ``max_tokens``
    padded tokens. A sequence longer than ``max_tokens`` gets a batch of its own.

    Arguments:
        lengths: residue count of each sequence.
        batch_size: most sequences per batch.
        max_tokens: most ``batch rows × padded length`` per batch.

    Yields:
        Lists of indices into ``lengths``; every index appears exactly once.
    """
    if batch_size < 1:
        raise ValueError(f"Invalid 'batch_size' value: {batch_size} (expected a positive integer)")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for index in order:
        width = lengths[batch[0]] + 2 if batch else lengths[index] + 2
        too_many_tokens = max_tokens is not None and (len(batch) + 1) * width > max_tokens
        if batch and (len(batch) >= batch_size or too_many_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
