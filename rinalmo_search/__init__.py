"""RiNALMo-Search: RNA homology search with language-model embeddings and Milvus.

Import layout (one distribution, one namespace):

- ``rinalmo_search`` (``rinalmo_search/``): CLI, settings, FASTA I/O, search pipeline, MSA
- ``rinalmo_search.embedder`` (``embedder/``): tokeniser, models, the ``Embedder`` interface
- ``rinalmo_search.milvus`` (``milvus/``): the Milvus vector store
- ``rinalmo_search.training`` (``training/``): Rfam data preparation and head training
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rinalmo-search")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
