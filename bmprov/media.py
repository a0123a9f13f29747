"""``bmprov media add``: an installer's kernel and initrd read straight out of its ISO image.

The ISO 9660 image is read with pycdlib (pure Python, maintained, reads Rock Ridge, Joliet and
plain ISO 9660 names and El Torito images), so nothing is mounted: no root, no loop device,
no mount left behind when something fails. The kernel and initrd go to the OS profile's own
paths under the TFTP root (``[boot.os.NAME] kernel``/``initrd``, e.g. ``rocky9/vmlinuz``),
written atomically and only when their bytes change; with ``--tree`` the whole image is
copied to ``<http_root>/repo/<media>/``, the profile's default repository URL. A manifest
``<kernel dir>/media.json`` records which ISO (name, size, SHA-256) and which paths they came
from.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bmprov.boot.osprofiles import unknown_os
from bmprov.config import Config
from bmprov.errors import InputError
from bmprov.fsutil import atomic_write

LAYOUTS = (  # where installers keep their network-boot kernel and initrd
    ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"),  # Rocky, RHEL, Alma, Fedora
    ("install.amd/vmlinuz", "install.amd/initrd.gz"),  # Debian
    ("casper/vmlinuz", "casper/initrd"),  # Ubuntu live-server
    ("isolinux/vmlinuz", "isolinux/initrd.img"),  # older RHEL-likes
)


@dataclass
class MediaResult:
    name: str
    kernel: Path
    initrd: Path
    source: tuple[str, str]
    written: list[Path] = field(default_factory=list)
    tree_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "os": self.name,
            "kernel": str(self.kernel),
            "initrd": str(self.initrd),
            "from": list(self.source),
            "written": [str(p) for p in self.written],
            "tree_files": self.tree_files,
        }


class _Iso:
    """An open ISO image, read through the richest name space it has."""

    def __init__(self, path: Path) -> None:
        import pycdlib  # noqa: PLC0415 (only this command needs it)
        from pycdlib.pycdlibexception import PyCdlibException  # noqa: PLC0415

        self.error = PyCdlibException
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except (PyCdlibException, OSError) as exc:
            raise InputError(f"{path}: not a readable ISO 9660 image ({exc})") from None
        self.facade: Any
        if self.iso.has_rock_ridge():
            self.facade, self.key = self.iso.get_rock_ridge_facade(), "rr_path"
        elif self.iso.has_joliet():
            self.facade, self.key = self.iso.get_joliet_facade(), "joliet_path"
        else:
            self.facade, self.key = self.iso.get_iso9660_facade(), "iso_path"

    def _name(self, path: str) -> str:
        name = "/" + path.strip("/")
        return name.upper() + ";1" if self.key == "iso_path" else name

    def read(self, path: str) -> bytes | None:
        """A file's bytes, or None when the image has no such file."""
        out = io.BytesIO()
        try:
            self.facade.get_file_from_iso_fp(out, self._name(path))
        except self.error:
            return None
        return out.getvalue()

    def walk(self) -> list[str]:
        """Every file's path in the image (the tree an installer needs over HTTP)."""
        files = []
        for root, _dirs, names in self.iso.walk(**{self.key: "/"}):
            files += [str(PurePosixPath(root) / n).removesuffix(";1") for n in names]
        return files

    def close(self) -> None:
        self.iso.close()


def add_media(
    config: Config, name: str, iso_path: Path, *, kernel: str | None = None,
    initrd: str | None = None, tree: bool = False,
) -> MediaResult:  # fmt: skip
    """Read the kernel and initrd (and the tree) of ``iso_path`` into profile ``name``'s paths.

    :raises InputError: unknown OS profile, unreadable image, no kernel/initrd found.
    """
    settings = config.settings.boot
    if name not in settings.os:
        raise InputError(unknown_os(name, settings.os))
    profile = settings.os[name]
    if not iso_path.is_file():
        raise InputError(f"{iso_path}: no such file")
    iso = _Iso(iso_path)
    try:
        candidates = [(kernel, initrd)] if kernel or initrd else list(LAYOUTS)
        for kpath, ipath in candidates:
            kdata = iso.read(kpath or "") if kpath else None
            idata = iso.read(ipath or "") if ipath else None
            if kdata is not None and idata is not None:
                break
        else:
            looked = ", ".join(f"{k} + {i}" for k, i in candidates)
            raise InputError(
                f"{iso_path}: no kernel and initrd found (looked for {looked}); "
                "name them with --kernel and --initrd"
            )
        result = MediaResult(
            name, settings.tftp_root / profile.kernel, settings.tftp_root / profile.initrd,
            (str(kpath), str(ipath)),
        )  # fmt: skip
        _put(result, result.kernel, kdata)
        _put(result, result.initrd, idata)
        if tree:
            repo = settings.http_root / "repo" / profile.media
            for path in iso.walk():
                data = iso.read(path)
                if data is not None:
                    _put(result, repo / path.lstrip("/"), data)
                    result.tree_files += 1
    finally:
        iso.close()
    digest = hashlib.sha256()
    with iso_path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    manifest = {
        "iso": iso_path.name, "size": iso_path.stat().st_size, "sha256": digest.hexdigest(),
        "kernel": result.source[0], "initrd": result.source[1], "tree": tree,
    }  # fmt: skip
    _put(result, result.kernel.parent / "media.json", json.dumps(manifest, indent=2).encode())
    return result


def _put(result: MediaResult, path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it already holds exactly those bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    atomic_write(path, data)
    result.written.append(path)
