"""The connector's code: domain (no I/O), service (handlers and ports), adapters (Azure and Graph)."""
