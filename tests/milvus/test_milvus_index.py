"""The HNSW index really built, and versioned collections swapped behind the alias."""

from __future__ import annotations

import pytest
from milvus_testdata import MODEL, Target, make_records, make_vectors
from rinalmo_search.embedder import ModelInfo
from rinalmo_search.milvus import IndexSettings, VectorStore
from rinalmo_search.milvus import schema as S

from rinalmo_search.errors import StoreError


def test_requested_hnsw_parameters_are_built(target: Target) -> None:
    settings = IndexSettings(M=24, ef_construction=100, ef=50)
    with target.open(index=settings) as store:
        store.ensure_collection(MODEL)
        store.insert(make_records(300), make_vectors(300))
        store.flush()
        store.wait_for_index(timeout=120)
        report = store.verify_index()
    assert report.description["index_type"] == "HNSW"
    assert report.description["metric_type"] == "COSINE"
    if target.backend == "lite":
        # Lite: read back from the faiss files themselves.
        assert report.segments and sum(s.rows for s in report.segments) == 300
        assert {(s.kind, s.M, s.ef_construction) for s in report.segments} == {
            ("IndexHNSWFlat", 24, 100)
        }
        assert "M=[24]" in report.summary()
    else:
        params = report.description["params"]
        assert int(params["M"]) == 24 and int(params["efConstruction"]) == 100


def test_flat_lite_parameters_are_caught(lite_uri: str) -> None:
    """The documented flat ``add_index(M=...)`` form is silently dropped by Milvus Lite."""
    settings = IndexSettings(M=24, ef_construction=100)
    with VectorStore(lite_uri, collection="flat", index=settings) as store:
        client = store.client
        index_params = client.prepare_index_params()
        index_params.add_index(
            field_name=S.VECTOR, index_type="HNSW", metric_type="COSINE", M=24, efConstruction=100
        )
        client.create_collection(
            "flat", schema=S.build_schema(client, MODEL.dim), index_params=index_params
        )
        store.check_model(MODEL)
        store.insert(make_records(200), make_vectors(200))
        store.flush()
        store.wait_for_index(timeout=120)
        with pytest.raises(StoreError, match=r"faiss M=16, expected 24"):
            store.verify_index()


def test_new_version_is_swapped_in_behind_the_alias(target: Target) -> None:
    new_model = ModelInfo("other-model", "2", 8)
    old_records, new_records = make_records(20, prefix="old"), make_records(12, prefix="new")
    with target.open() as store, target.open() as reader:
        store.ensure_collection(MODEL)
        store.insert(old_records, make_vectors(20))
        store.flush()
        reader.check_model(MODEL)
        built = store.create_version(new_model)
        assert built == f"{target.collection}_v2"
        assert store.insert(new_records, make_vectors(12, dim=8)) == 12
        store.flush()
        # Until the swap, readers see the old version through the alias.
        (hits,) = reader.search(make_vectors(1), top_k=5)
        assert all(hit.target_id.startswith("old") for hit in hits)
        with pytest.raises(StoreError, match="alias .* points at it"):
            store.drop_version(f"{target.collection}_v1")
        previous = store.promote(drop_previous=True)
        assert previous == f"{target.collection}_v1"
        assert store.versions() == [built]
    with target.open() as store:
        with pytest.raises(StoreError, match="other-model@2"):
            store.check_model(MODEL)
        store.check_model(new_model)
        assert store.count() == 12
        (hits,) = store.search(make_vectors(1, dim=8), top_k=3)
        assert all(hit.target_id.startswith("new") for hit in hits)
