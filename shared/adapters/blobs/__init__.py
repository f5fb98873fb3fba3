"""Blob Storage adapters."""
