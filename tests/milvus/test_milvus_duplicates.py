"""Every stored record is retrievable, also when several ids share one sequence (issue 15, 2).

HNSW can leave some of several identical vectors unreachable: on Milvus Lite, 500 sequences
stored under eight ids each (one write and flush per copy, as eight ``index`` runs would do)
left three of the 4,000 records unreturned even for their own vector at ef = 2,000.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from milvus_testdata import MODEL, Target, make_records, make_vectors
from rinalmo_search.embedder import l2_normalise

N_SEQUENCES = 500
COPIES = 8


def clustered_vectors(n: int) -> np.ndarray:
    """Unit vectors around 30 centres, as families cluster."""
    centres = make_vectors(30, seed=9)
    return l2_normalise(make_vectors(n) * 0.5 + centres[np.arange(n) % len(centres)])


def test_every_copy_of_a_shared_sequence_is_found_by_its_vector(target: Target) -> None:
    records = make_records(N_SEQUENCES)
    vectors = clustered_vectors(N_SEQUENCES)
    with target.open() as store:
        store.ensure_collection(MODEL)
        for copy in range(COPIES):
            ids = [dataclasses.replace(r, id=f"c{copy}_{r.id}") for r in records]
            store.insert(ids, vectors)
            store.flush()
        store.wait_for_index(settle=1.0)
        missing = {f"c{copy}_{r.id}" for copy in range(COPIES) for r in records}
        found = store.search(vectors, top_k=COPIES + 2, fields=("family",))
        for record, hits in zip(records, found, strict=True):
            assert len(hits) == COPIES + 2
            own = {f"c{copy}_{record.id}" for copy in range(COPIES)}
            # the eight ids of the query's own sequence rank first, all with its score
            assert {hit.target_id for hit in hits[:COPIES]} == own
            assert all(abs(hit.score - hits[0].score) < 1e-5 for hit in hits[:COPIES])
            missing -= {hit.target_id for hit in hits}
        assert not missing, f"{len(missing)} stored records never returned: {sorted(missing)}"

        # the copies a search adds obey its filter and its top_k
        family = records[0].family
        filtered = store.search(vectors[:20], top_k=3, filter=f'family == "{family}"')
        assert all(len(hits) == 3 for hits in filtered)
        assert {hit.family for hits in filtered for hit in hits} == {family}


def test_search_looks_up_copies_only_where_ids_share_content(target: Target) -> None:
    records = make_records(40)
    vectors = clustered_vectors(40)
    with target.open() as store:
        store.ensure_collection(MODEL)
        store.insert(records[:30], vectors[:30])
        queries: list[str] = []
        query = store.client.query

        def counting_query(*args: object, **kwargs: object) -> object:
            queries.append(str(kwargs.get("filter")))
            return query(*args, **kwargs)

        store.client.query = counting_query  # type: ignore[method-assign]
        assert len(store.search(vectors[:5], top_k=3)[0]) == 3
        assert not any("content_hash in" in expression for expression in queries)
        # the same sequence under a new id: the write marks the collection, searches expand
        store.insert([dataclasses.replace(records[0], id="again")], vectors[:1])
        hits = store.search(vectors[:1], top_k=2, fields=())[0]
        assert {hit.target_id for hit in hits} == {records[0].id, "again"}
        assert any("content_hash in" in expression for expression in queries)
    with target.open() as reopened:
        assert reopened.client.describe_collection(reopened.physical_name())["properties"][
            "rinalmo_search.shared_content"
        ] == "1"


def test_the_two_stage_search_returns_every_id_of_a_hits_sequence(tmp_path) -> None:
    """search_records re-ranks without copies (stage 1) and adds them to its final hits."""
    from rinalmo_search.embedder import load_embedder
    from rinalmo_search.milvus import VectorStore

    from rinalmo_search.pipeline import search_records

    records = make_records(60)
    embedder = load_embedder("compact-kmer")
    with VectorStore(str(tmp_path / "dup.db")) as store:
        store.ensure_collection(embedder.info)
        for copy in range(3):
            copies = [dataclasses.replace(r, id=f"c{copy}_{r.id}") for r in records]
            store.insert(copies, embedder.embed([r.sequence for r in copies]))
            store.flush()
        hits = search_records(records[:5], store, embedder, top_k=6, rerank="sw")
    for record, found in zip(records[:5], hits, strict=True):
        own = {f"c{copy}_{record.id}" for copy in range(3)}
        assert own <= {hit.target_id for hit in found[:3]}
        assert len({hit.score for hit in found[:3]}) == 1  # the same alignment, the same score
