"""One module per ``rinalmo-search`` sub-command; each exposes ``register(subparsers)``."""
