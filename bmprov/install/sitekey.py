"""The site's default SSH key, made by ``bmprov init`` so no installed node is locked.

A node with neither a root password nor an SSH key would install with root locked and no other
user: nobody could log in. Rendering refuses that (``install_options``); so that a fresh site
still works, ``bmprov init`` makes an Ed25519 key pair in ``<site>/ssh/`` (private key 0600,
never printed or logged) and writes its public half into ``[install] ssh_keys``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bmprov.fsutil import atomic_write

KEY_NAME = "bmprov_ed25519"


def site_public_key(directory: Path) -> str:
    """The public key line of ``<directory>/ssh/bmprov_ed25519``, made now if missing."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    keydir = directory / "ssh"
    private, public = keydir / KEY_NAME, keydir / f"{KEY_NAME}.pub"
    if private.is_file() and public.is_file():
        return public.read_text(encoding="utf-8").strip()
    keydir.mkdir(mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    line = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " bmprov-site"
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    atomic_write(public, line + "\n")
    return line
