"""Implementations of the service ports, named by technology: Table Storage, queues, Key Vault, Graph."""
