"""Handlers (one per use case) and the ports they need, as Protocols named by role."""
