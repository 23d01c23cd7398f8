"""The collection schema and index parameters, defined in exactly one place.

Every field name the rest of the package uses is a constant here; :func:`build_schema` and
:func:`build_index_params` are the only places that turn them into Milvus objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymilvus import DataType, MilvusClient

from rinalmo_search.errors import ConfigError

#: Primary key: the sequence id (first word of the FASTA header).
ID = "id"
#: The embedding (FLOAT_VECTOR, dimension from the model).
VECTOR = "vector"
#: The sequence itself, so hits can be written as FASTA without a second store.
SEQUENCE = "sequence"
#: Sequence length in nucleotides (filterable: ``length >= 50``).
LENGTH = "length"
#: SHA-1 of the normalised sequence (:func:`rinalmo_search.seqio.sequence_hash`).
CONTENT_HASH = "content_hash"
#: Rfam family accession, ``""`` when unknown.
FAMILY = "family"
#: Rfam clan accession, ``""`` when unknown.
CLAN = "clan"
#: Where the record came from (file:line, or a taxon/source label).
SOURCE = "source"
#: ``name@version`` of the model that made the vector.
MODEL = "model"

#: Longest id, family/clan accession, source and model tag accepted (bytes, UTF-8).
MAX_ID_LENGTH = 512
MAX_LABEL_LENGTH = 64
MAX_SOURCE_LENGTH = 1024
MAX_MODEL_LENGTH = 256
#: Milvus's VARCHAR limit; longer sequences are refused at insert with the id named.
MAX_SEQUENCE_LENGTH = 65535

#: Scalar fields returned with every hit (never the vector: it is large and unused).
OUTPUT_FIELDS = [ID, SEQUENCE, LENGTH, CONTENT_HASH, FAMILY, CLAN, SOURCE, MODEL]

#: Collection properties written at creation: the model guard reads them back.
PROPERTY_MODEL = "rinalmo_search.model"
PROPERTY_DIM = "rinalmo_search.dim"
PROPERTY_SCHEMA = "rinalmo_search.schema_version"
#: ``"1"`` once two ids of the collection share a content hash (set by the write that made it
#: so, never unset), ``"0"`` at creation; absent (collections made before it) reads as ``"1"``.
#: Searches look up the other ids of a hit's content only where it is ``"1"``.
PROPERTY_SHARED_CONTENT = "rinalmo_search.shared_content"
SCHEMA_VERSION = "1"

METRICS = ("COSINE", "IP")


@dataclass(frozen=True)
class IndexSettings:
    """HNSW parameters of a collection (build time) and of its searches.

    Attributes:
        M: graph degree (faiss/Milvus ``M``); level 0 keeps ``2*M`` links.
        ef_construction: candidate list size while building (``efConstruction``).
        ef: candidate list size while searching; raised to ``top_k`` when smaller.
        metric: ``COSINE`` or ``IP`` (identical on the unit vectors embedders return).
    """

    M: int = 64
    ef_construction: int = 200
    ef: int = 128
    metric: str = "COSINE"

    def __post_init__(self) -> None:
        if not 2 <= self.M <= 2048:
            raise ConfigError(f"Invalid HNSW 'M' value: {self.M} (expected 2..2048)")
        if self.ef_construction < 1:
            raise ConfigError(
                f"Invalid HNSW 'ef_construction' value: {self.ef_construction} "
                "(expected a positive integer)"
            )
        if self.ef < 1:
            raise ConfigError(f"Invalid HNSW 'ef' value: {self.ef} (expected a positive integer)")
        if self.metric not in METRICS:
            raise ConfigError(
                f"Invalid metric {self.metric!r} (expected one of {', '.join(METRICS)})"
            )

    def build_params(self) -> dict[str, int]:
        """The HNSW build parameters in Milvus's spelling."""
        return {"M": self.M, "efConstruction": self.ef_construction}

    def search_params(self, top_k: int, ef: int | None = None) -> dict[str, Any]:
        """Search parameters; ``ef`` is at least ``top_k`` (Milvus refuses ``ef < k``)."""
        return {"metric_type": self.metric, "params": {"ef": max(ef or self.ef, top_k)}}


def build_schema(client: MilvusClient, dim: int, *, description: str = "") -> Any:
    """The collection schema for vectors of dimension ``dim``.

    Raises:
        ConfigError: ``dim`` is not a positive integer.
    """
    if not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"Invalid vector dimension: {dim!r} (expected a positive integer)")
    schema = client.create_schema(
        auto_id=False, enable_dynamic_field=False, description=description
    )
    schema.add_field(ID, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(SEQUENCE, DataType.VARCHAR, max_length=MAX_SEQUENCE_LENGTH)
    schema.add_field(LENGTH, DataType.INT64)
    schema.add_field(CONTENT_HASH, DataType.VARCHAR, max_length=64)
    schema.add_field(FAMILY, DataType.VARCHAR, max_length=MAX_LABEL_LENGTH)
    schema.add_field(CLAN, DataType.VARCHAR, max_length=MAX_LABEL_LENGTH)
    schema.add_field(SOURCE, DataType.VARCHAR, max_length=MAX_SOURCE_LENGTH)
    schema.add_field(MODEL, DataType.VARCHAR, max_length=MAX_MODEL_LENGTH)
    return schema


def build_index_params(client: MilvusClient, settings: IndexSettings) -> Any:
    """HNSW index parameters for the vector field.

    The build parameters are passed nested (``params={"params": {...}}``): a Milvus server
    reads both spellings, but Milvus Lite silently drops the flat ``M=...`` form and builds
    faiss HNSW with M=16.
    """
    index_params = client.prepare_index_params()
    index_params.add_index(
        field_name=VECTOR,
        index_type="HNSW",
        index_name=VECTOR,
        metric_type=settings.metric,
        params={"params": settings.build_params()},
    )
    return index_params
