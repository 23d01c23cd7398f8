"""The model guard: a collection holds the vectors of one model, and says which.

A collection records its model tag and dimension as properties when it is created
(:mod:`.versions`); every search and write checks them against the model in use, so vectors of
two models never mix.
"""

from __future__ import annotations

from rinalmo_search.embedder import ModelInfo

from rinalmo_search.errors import StoreError

from . import schema as S
from .base import StoreBase
from .connection import milvus_errors


class ModelGuard(StoreBase):
    """Which model built the collection, and refusing another."""

    def stored_model(self) -> tuple[str, int]:
        """The model tag and vector dimension the collection was built for.

        Also notes whether ids of the collection share content
        (:data:`~.schema.PROPERTY_SHARED_CONTENT`), which searches use until it is read again.

        Raises:
            StoreError: the collection does not exist.
        """
        target = self._require_target()
        with milvus_errors(f"describe collection {target!r}"):
            info = self.client.describe_collection(target)
        dim = next(
            (int(f["params"]["dim"]) for f in info["fields"] if f["name"] == S.VECTOR), 0
        )
        properties = info.get("properties") or {}
        self._shared = str(properties.get(S.PROPERTY_SHARED_CONTENT, "1")) != "0"
        tag = str(properties.get(S.PROPERTY_MODEL, ""))
        if not tag:
            tag = self._first_row_model(target)
        return tag, dim

    def _first_row_model(self, target: str) -> str:
        self._ensure_loaded(target)
        with milvus_errors(f"read the model tag of {target!r}"):
            rows = self.client.query(
                target, filter=f'{S.ID} != ""', output_fields=[S.MODEL], limit=1
            )
        return str(rows[0][S.MODEL]) if rows else ""

    def check_model(self, model: ModelInfo) -> None:
        """Check the collection exists and was built by ``model`` (name, version and dim).

        Raises:
            StoreError: the collection is missing, or holds vectors of another model or size.
        """
        target = self._require_target()
        tag, dim = self._stored = self.stored_model()
        if dim != model.dim or (tag and tag != model.tag):
            raise StoreError(
                f"Collection {self.alias!r} ({target}) holds {dim}-d vectors of model "
                f"{tag or 'unknown'!r}, but the current model is {model.tag!r} with "
                f"{model.dim}-d vectors; search with the same model, or build a new "
                f"collection with 'rinalmo-search index --collection NAME ...'"
            )
        self._model = model
        self._ensure_loaded(target)
