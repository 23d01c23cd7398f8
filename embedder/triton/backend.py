"""Triton Python-backend model that runs the exported TorchScript embedder on CPU.

This file is the source of ``model_repository/<name>/1/model.py``:
:func:`rinalmo_search.embedder.triton.repository.write_model_repository` copies it next to
``model.pt``. It runs inside Triton's Python stub, so it imports nothing from
``rinalmo_search``. Triton's dynamic batcher hands :meth:`TritonPythonModel.execute` every
queued request at once; they are padded to one length and run as one torch batch.

Config parameters read (``parameters`` in ``configs/cpu_python.pbtxt``):
``torch_threads`` (intra-op threads, default 1) and ``pad_id`` (token id used to pad requests of
different lengths into one batch, default 1 = RiNALMo's ``<pad>``).
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


def _parameter(config: dict, key: str, default: str) -> str:
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") else str(value)


class TritonPythonModel:
    """Loads ``model.pt`` once per instance and embeds batches of token ids."""

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        torch.set_num_threads(int(_parameter(config, "torch_threads", "1")))
        self.pad_id = int(_parameter(config, "pad_id", "1"))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        path = os.path.join(version_dir, "model.pt")
        if not os.path.exists(path):
            raise pb_utils.TritonModelException(
                f"No TorchScript file at {path} (run 'rinalmo-search export' first)"
            )
        self.model = torch.jit.load(path, map_location="cpu").eval()
        output = pb_utils.get_output_config_by_name(config, "embedding")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests: list) -> list:
        ids_list, mask_list, responses = [], [], [None] * len(requests)
        valid = []
        for index, request in enumerate(requests):
            ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
            mask = pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            if ids.shape != mask.shape or ids.ndim != 2:
                responses[index] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(
                        f"input_ids {list(ids.shape)} and attention_mask {list(mask.shape)} "
                        "must have the same [batch, length] shape"
                    )
                )
                continue
            ids_list.append(ids)
            mask_list.append(mask)
            valid.append(index)
        if valid:
            length = max(ids.shape[1] for ids in ids_list)
            rows = sum(ids.shape[0] for ids in ids_list)
            input_ids = np.full((rows, length), self.pad_id, dtype=np.int64)
            attention_mask = np.zeros((rows, length), dtype=np.int64)
            start = 0
            for ids, mask in zip(ids_list, mask_list, strict=True):
                input_ids[start : start + len(ids), : ids.shape[1]] = ids
                attention_mask[start : start + len(ids), : ids.shape[1]] = mask
                start += len(ids)
            try:
                with torch.inference_mode():
                    out = self.model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
                vectors = out.float().numpy().astype(self.output_dtype, copy=False)
            except Exception as error:  # noqa: BLE001 - reported to every request of the batch
                for index in valid:
                    responses[index] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"model failed on a batch of {rows}: {error}")
                    )
                return responses
            start = 0
            for index, ids in zip(valid, ids_list, strict=True):
                chunk = vectors[start : start + len(ids)]
                start += len(ids)
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("embedding", np.ascontiguousarray(chunk))]
                )
        return responses

    def finalize(self) -> None:
        self.model = None
