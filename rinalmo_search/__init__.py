"""RiNALMo-Search: RNA homology search with language-model embeddings and Milvus.

Import layout (one distribution, one namespace):

- ``rinalmo_search``           core: CLI, settings, FASTA I/O, search pipeline, MSA  (``rinalmo_search/``)
- ``rinalmo_search.embedder``  tokeniser, models, the ``Embedder`` interface         (``embedder/``)
- ``rinalmo_search.milvus``    the Milvus vector store                                (``milvus/``)
- ``rinalmo_search.training``  Rfam data preparation and head training               (``training/``)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rinalmo-search")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
