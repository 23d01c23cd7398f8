"""Index Rfam seed sequences into a store batch by batch, printing ``BATCH n`` after each.

Run as a subprocess by the resumability test, which kills it midway and runs it again.
The input repeats its first records, as a FASTA with duplicates would.

Usage: python index_worker.py URI COLLECTION FASTA N_RECORDS BATCH_SIZE
"""

from __future__ import annotations

import sys

from rinalmo_search.embedder import load_embedder
from rinalmo_search.milvus import IndexSettings, VectorStore

from rinalmo_search.seqio import iter_fasta


def main() -> int:
    uri, collection, fasta, n_records, batch_size = sys.argv[1:6]
    records = []
    for record in iter_fasta(fasta):
        records.append(record)
        if len(records) == int(n_records):
            break
    records += records[: len(records) // 5]
    embedder = load_embedder("kmer")
    with VectorStore(uri, collection=collection, index=IndexSettings(M=16)) as store:
        store.ensure_collection(embedder.info)
        todo = store.new_records(records)
        print(f"TODO {len(todo)}", flush=True)
        size = int(batch_size)
        for number, start in enumerate(range(0, len(todo), size), start=1):
            batch = todo[start : start + size]
            store.insert(batch, embedder.embed([r.sequence for r in batch]))
            print(f"BATCH {number}", flush=True)
        store.flush()
        print(f"DONE {store.count()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
