"""Training of the homology head: Rfam parsing, data preparation (length filter, MMseqs2
de-duplication, clan-grouped split), Rfam release download, feature caching, the clan-aware
sampler, the supervised contrastive loss, the training loop and retrieval metrics."""
