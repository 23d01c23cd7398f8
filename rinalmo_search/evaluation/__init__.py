"""Evaluation: retrieval (the protocol, its metrics, the peer tools) and MSA quality
(``msa_metrics``: scores against a reference alignment; ``msa_benchmark``: ``evaluate-msa``)."""
