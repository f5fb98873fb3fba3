"""TLS for the emulator: a CA generated at start (trustme), a leaf for localhost and 127.0.0.1, and
the CA's PEM written where the clients can be told to trust it."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


def server_context(ca_file: Path) -> ssl.SSLContext:
    ca = trustme.CA(organization_name="m365emulator local CA")
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_file))
    return context
