"""Structure-aware multiple sequence alignment: MAFFT → RNAalifold → Infernal.

Public entry point: :func:`build_msa` (unaligned FASTA → Stockholm with ``#=GC SS_cons``).
"""

from .pipeline import MsaResult, build_msa

__all__ = ["MsaResult", "build_msa"]
