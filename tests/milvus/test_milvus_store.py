"""VectorStore on real Milvus Lite: schema, model guard, de-duplication, upsert, delete, search."""

from __future__ import annotations

import numpy as np
import pytest
from milvus_testdata import MODEL, Target, make_records, make_vectors
from rinalmo_search.embedder import ModelInfo
from rinalmo_search.milvus import VectorStore, build_filter
from rinalmo_search.milvus import schema as S

from rinalmo_search.errors import StoreError
from rinalmo_search.seqio import SequenceRecord


def test_insert_search_returns_self_first_with_fields(store: VectorStore) -> None:
    records, vectors = make_records(60), make_vectors(60)
    assert store.insert(records, vectors) == 60
    store.flush()
    assert store.count() == 60
    results = store.search(vectors[:5], top_k=3)
    assert len(results) == 5
    for record, hits in zip(records[:5], results, strict=True):
        assert len(hits) == 3
        best = hits[0]
        assert best.target_id == record.id
        assert best.score == pytest.approx(1.0, abs=1e-5)
        assert best.embedding_score == best.score
        assert best.sequence == record.sequence
        assert best.length == len(record.sequence)
        assert best.family == record.family and best.clan == record.clan
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_scores_are_cosine_similarities(store: VectorStore) -> None:
    records, vectors = make_records(30), make_vectors(30)
    store.insert(records, vectors)
    store.flush()
    query = make_vectors(1, seed=99)
    (hits,) = store.search(query, top_k=30)
    exact = {r.id: float(vectors[i] @ query[0]) for i, r in enumerate(records)}
    assert {h.target_id for h in hits} == set(exact)
    for hit in hits:
        assert hit.score == pytest.approx(exact[hit.target_id], abs=1e-4)


def test_reinserting_same_records_adds_nothing(store: VectorStore) -> None:
    records, vectors = make_records(20), make_vectors(20)
    assert store.insert(records, vectors) == 20
    assert store.new_records(records) == []
    assert store.insert(records, vectors) == 0
    more = make_records(25)
    assert [r.id for r in store.new_records(more)] == [r.id for r in more[20:]]
    store.flush()
    assert store.count() == 20


def test_changed_sequence_is_refused_unless_upsert(store: VectorStore) -> None:
    records, vectors = make_records(5), make_vectors(5)
    store.insert(records, vectors)
    changed = SequenceRecord(id=records[0].id, sequence="ACGUACGUAA", family="RF99999")
    with pytest.raises(StoreError, match=r"seq0.*different sequence"):
        store.new_records([changed])
    with pytest.raises(StoreError, match="different sequence"):
        store.insert([changed], vectors[:1])
    assert store.insert([changed], vectors[1:2], upsert=True) == 1
    store.flush()
    assert store.count() == 5
    (row,) = store.get([records[0].id])
    assert row[S.SEQUENCE] == "ACGUACGUAA" and row[S.FAMILY] == "RF99999"
    assert row[S.LENGTH] == 10 and row[S.MODEL] == MODEL.tag


def test_delete_by_id(store: VectorStore) -> None:
    records, vectors = make_records(10), make_vectors(10)
    store.insert(records, vectors)
    store.flush()
    assert store.delete([records[0].id, records[1].id, "absent"]) == 2
    assert store.count() == 8
    (hits,) = store.search(vectors[0], top_k=10)
    assert records[0].id not in {h.target_id for h in hits}


def test_filters(store: VectorStore) -> None:
    records, vectors = make_records(90), make_vectors(90)
    store.insert(records, vectors)
    store.flush()
    expr = build_filter(family="RF00005", min_length=50)
    (hits,) = store.search(vectors[0], top_k=90, filter=expr)
    expected = {r.id for r in records if r.family == "RF00005" and len(r.sequence) >= 50}
    assert {h.target_id for h in hits} == expected
    (hits,) = store.search(vectors[0], top_k=90, filter=build_filter(clan=["CL00111"]))
    assert {h.clan for h in hits} == {"CL00111"} and len(hits) == 30
    lengths = build_filter(min_length=40, max_length=60, source="test.fa")
    (hits,) = store.search(vectors[0], top_k=90, filter=lengths)
    assert {h.target_id for h in hits} == {
        r.id for r in records if 40 <= len(r.sequence) <= 60
    }
    with pytest.raises(StoreError, match=r"filter 'family =='"):
        store.search(vectors[0], top_k=5, filter="family ==")


def test_other_model_is_refused(target: Target) -> None:
    with target.open() as store:
        store.ensure_collection(MODEL)
    other_dim = ModelInfo(MODEL.name, MODEL.version, 32)
    other_version = ModelInfo(MODEL.name, "2", MODEL.dim)
    with target.open() as store:
        for other in (other_dim, other_version):
            with pytest.raises(StoreError, match=rf"{MODEL.tag}.*{other.tag}"):
                store.ensure_collection(other)
            with pytest.raises(StoreError, match="same model"):
                store.check_model(other)


def test_missing_collection_says_how_to_create_it(target: Target) -> None:
    with target.open() as store:
        with pytest.raises(StoreError, match=r"does not exist.*rinalmo-search index"):
            store.check_model(MODEL)


def test_wrong_vector_shape_is_refused(store: VectorStore) -> None:
    records = make_records(3)
    with pytest.raises(StoreError, match=r"Expected vectors of shape \(3, 16\)"):
        store.insert(records, np.zeros((3, 8), dtype=np.float32))


def test_persists_across_reopen(target: Target) -> None:
    records, vectors = make_records(40), make_vectors(40)
    with target.open() as store:
        store.ensure_collection(MODEL)
        store.insert(records, vectors)
        store.flush()
    with target.open() as store:
        store.check_model(MODEL)
        assert store.count() == 40
        (hits,) = store.search(vectors[7], top_k=1)
        assert hits[0].target_id == records[7].id
