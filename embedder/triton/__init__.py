"""Serving through Triton: the gRPC client, the model repository and a local CPU server.

* :mod:`.client` — :class:`~.client.TritonEmbedder`, the local embedder's model reached over gRPC.
* :mod:`.repository` — writes the model repository around an exported TorchScript file.
* :mod:`.backend` and :mod:`.front` — the Python-backend models that :mod:`.repository` copies
  to ``<name>/1/model.py`` and ``<name>_text/1/model.py``; they run inside Triton's Python stub
  and import nothing from this package.
* :mod:`.server` — runs the ``tritonserver`` bundled with ``nvidia-pytriton`` on CPU.

Nothing is imported here, so that importing one part never pulls in another's dependencies.
"""
