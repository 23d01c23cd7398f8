"""Retrieval evaluation: the protocol, its metrics and the peer tools."""
