"""Triton Python-backend front model: raw sequences (BYTES) in, embeddings out.

This file is the source of ``model_repository/<name>_text/1/model.py``, written by
:func:`rinalmo_search.embedder.triton.repository.write_model_repository`. It lets clients that
cannot tokenise (curl, other languages) send sequences as strings: it tokenises them exactly as
:mod:`rinalmo_search.embedder.alphabet` does (checked by the tests) and calls the embedding
model ``<name>`` inside the server (Business Logic Scripting), so the same GPU or CPU model
serves both paths. It needs only numpy, so it runs in NVIDIA's container as it is.

Config parameters read: ``target_model`` (the embedding model's name). Like the local
embedder, it embeds sequences of any length (``max_length`` only records what the model was
exported for).
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

# RiNALMo's alphabet: <cls> <pad> <eos> <unk> <mask>, then residues; U is read as T
CLS_IDX, PAD_IDX, EOS_IDX, UNK_IDX = 0, 1, 2, 3
RESIDUES = "ACGTIRYKMSWBDHVN-"
LOOKUP = np.full(256, UNK_IDX, dtype=np.int64)
for _index, _letter in enumerate(RESIDUES, start=5):
    LOOKUP[ord(_letter)] = _index
    LOOKUP[ord(_letter.lower())] = _index
LOOKUP[ord("U")] = LOOKUP[ord("T")]
LOOKUP[ord("u")] = LOOKUP[ord("T")]


def tokenise(sequences: list[bytes], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``(input_ids, attention_mask)`` of ``<cls> residues <eos>`` rows."""
    input_ids = np.full((len(sequences), length), PAD_IDX, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        codes = np.frombuffer(sequence, dtype=np.uint8)
        input_ids[row, 0] = CLS_IDX
        input_ids[row, 1 : len(codes) + 1] = LOOKUP[codes]
        input_ids[row, len(codes) + 1] = EOS_IDX
        attention_mask[row, : len(codes) + 2] = 1
    return input_ids, attention_mask


class TritonPythonModel:
    """Tokenises every queued request's sequences and embeds them in one call to the model."""

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = config.get("parameters", {})
        self.target = parameters["target_model"]["string_value"]

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        batches: list[tuple[int, list[bytes]]] = []
        for index, request in enumerate(requests):
            raw = pb_utils.get_input_tensor_by_name(request, "sequence").as_numpy().reshape(-1)
            sequences = [s if isinstance(s, bytes) else str(s).encode() for s in raw.tolist()]
            if not sequences:
                error = pb_utils.TritonError("no sequence in the request")
                responses[index] = pb_utils.InferenceResponse(error=error)
                continue
            batches.append((index, sequences))
        if not batches:
            return responses
        every = [s for _, members in batches for s in members]
        input_ids, attention_mask = tokenise(every, max(len(s) for s in every) + 2)
        inner = pb_utils.InferenceRequest(
            model_name=self.target,
            requested_output_names=["embedding"],
            inputs=[
                pb_utils.Tensor("input_ids", input_ids),
                pb_utils.Tensor("attention_mask", attention_mask),
            ],
        ).exec()
        if inner.has_error():
            error = pb_utils.TritonError(f"model {self.target!r} failed: {inner.error().message()}")
            for index, _ in batches:
                responses[index] = pb_utils.InferenceResponse(error=error)
            return responses
        vectors = pb_utils.get_output_tensor_by_name(inner, "embedding").as_numpy()
        start = 0
        for index, members in batches:
            chunk = np.ascontiguousarray(vectors[start : start + len(members)])
            start += len(members)
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("embedding", chunk)]
            )
        return responses
