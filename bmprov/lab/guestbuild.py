"""Debian kernels and tiny busybox initrds for QEMU guests, built without installing anything.

The kernel and static busybox come from ``apt-get download`` (never installed) and are cached
with the built images under :func:`cache_dir`, keyed by a digest of the .deb names and of the
initrd's files, so only the first run downloads and builds (shared/peers/pxe-boot.md §4). The
initrd is written by :func:`cpio_newc` directly (device nodes included): no mknod, no cpio.
The Debian kernel builds every NIC and disk driver as a module, so the initrd carries them,
in load order from ``modules.dep`` (``depmod -b`` on the extracted tree, which has none).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NIC_MODULES = ("e1000", "virtio_pci", "virtio_net")


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path


def cache_dir() -> Path:
    """``$BMPROV_TEST_CACHE``, else /var/cache/bmprov-test/pxe if writable, else $TMPDIR."""
    wanted = os.environ.get("BMPROV_TEST_CACHE")
    candidates = [Path(wanted)] if wanted else []
    candidates += [Path("/var/cache/bmprov-test/pxe"), Path(tempfile.gettempdir()) / "bmprov-pxe"]
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise RuntimeError("no writable cache directory for the QEMU guest images")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """A command's stdout; RuntimeError with its stderr if it fails."""
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {proc.stderr.strip()}")
    return proc.stdout


def download(package: str, dl: Path) -> Path:
    """The package's .deb in ``dl`` (``apt-get download`` once)."""
    found = sorted(dl.glob(f"{package}_*.deb"))
    if not found:
        try:
            run("apt-get", "download", package, cwd=dl)
        except RuntimeError:
            run("apt-get", "update", "-qq")
            run("apt-get", "download", package, cwd=dl)
        found = sorted(dl.glob(f"{package}_*.deb"))
    return found[-1]


def kernel_package() -> str:
    """``linux-image-amd64`` → the versioned package it depends on."""
    for line in run("apt-cache", "depends", "linux-image-amd64").splitlines():
        name = line.strip().removeprefix("Depends: ")
        if name.startswith("linux-image-") and name[len("linux-image-")].isdigit():
            return name
    raise RuntimeError("apt-cache: linux-image-amd64 depends on no versioned kernel")


Entry = tuple[str, int, bytes, tuple[int, int]]  # path, mode, data, (rdev major, minor)
Files = dict[str, bytes]  # initrd path → content (executables: under bin/ or named init)


def guest_image(kind: str, files: Files, modules: Iterable[str] = NIC_MODULES) -> GuestImage:
    """Kernel + initrd with ``files`` (``init`` first of all), built once per content."""
    cache = cache_dir()
    dl = cache / "dl"
    dl.mkdir(exist_ok=True)
    kdeb = download(kernel_package(), dl)
    bdeb = download("busybox-static", dl)
    mods = tuple(modules)
    key = hashlib.sha256(f"{kdeb.name}\0{bdeb.name}\0{mods}".encode())
    for name in sorted(files):
        key.update(name.encode() + b"\0" + files[name])
    out = cache / f"{kind}-{key.hexdigest()[:16]}"
    image = GuestImage(out / "vmlinuz", out / "initrd.gz")
    if not image.initrd.exists():
        _build(kdeb, bdeb, out, files, mods)
        for old in cache.glob(f"{kind}-*"):  # builds of older scripts or packages
            if old != out:
                shutil.rmtree(old, ignore_errors=True)
    return image


def _build(kdeb: Path, bdeb: Path, out: Path, files: Files, modules: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="bmprov-guest-") as tmp:
        work = Path(tmp)
        run("dpkg", "-x", kdeb, work / "k")
        run("dpkg", "-x", bdeb, work / "bb")
        busybox = work / "bb/bin/busybox"
        if "statically linked" not in run("file", busybox):
            raise RuntimeError(f"{busybox} is not statically linked")
        kver = next((work / "k/lib/modules").iterdir()).name
        run("depmod", "-b", work / "k", kver)
        moddir = work / f"k/lib/modules/{kver}"
        entries = _tree(busybox, _modules(moddir, modules), files)
        out.mkdir(parents=True, exist_ok=True)
        kernel, initrd = out / f"vmlinuz.{os.getpid()}", out / f"initrd.gz.{os.getpid()}"
        shutil.copyfile(work / f"k/boot/vmlinuz-{kver}", kernel)
        initrd.write_bytes(gzip.compress(cpio_newc(entries), mtime=0))
        kernel.replace(out / "vmlinuz")  # the initrd last: it marks a complete build
        initrd.replace(out / "initrd.gz")


def _modules(moddir: Path, wanted: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The modules with their dependencies, in load order (deps first)."""
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[_modname(path)] = (path, [_modname(d) for d in rest.split()])
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in reversed(deps[name][1]):
            visit(dep)
        if name not in order:
            order.append(name)

    for name in wanted:
        visit(name)
    loaded = []
    for name in order:
        module = moddir / deps[name][0]
        if module.suffix != ".ko":
            raise RuntimeError(f"{module}: compressed modules are not supported")
        loaded.append((name, module.read_bytes()))
    return loaded


def _modname(path: str) -> str:
    return Path(path).name.split(".ko")[0]


def _tree(busybox: Path, modules: list[tuple[str, bytes]], files: Files) -> list[Entry]:
    d, x, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFREG | 0o644
    entries: list[Entry] = [
        (name, d, b"", (0, 0))
        for name in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp")
    ]
    entries += [
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),  # the kernel opens it before /init
        ("dev/null", stat.S_IFCHR | 0o666, b"", (1, 3)),
        ("bin/busybox", x, busybox.read_bytes(), (0, 0)),
        ("lib/modules/load.order", f, "".join(f"{n}\n" for n, _ in modules).encode(), (0, 0)),
    ]
    entries += [(name, x, data, (0, 0)) for name, data in sorted(files.items())]
    entries += [(f"lib/modules/{n}.ko", f, data, (0, 0)) for n, data in modules]
    applets = run(busybox, "--list").split()
    link = stat.S_IFLNK | 0o777
    entries += [(f"bin/{a}", link, b"busybox", (0, 0)) for a in applets if a != "busybox"]
    return entries


def cpio_newc(entries: list[Entry]) -> bytes:
    """An initramfs archive (``cpio -H newc``), root-owned, mtime 0."""
    out = io.BytesIO()
    trailer: Entry = ("TRAILER!!!", 0, b"", (0, 0))
    for ino, (name, mode, data, (major, minor)) in enumerate([*entries, trailer], 1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(raw), 0)
        out.write(b"070701" + b"".join(b"%08X" % v for v in fields) + raw)
        out.write(b"\0" * (-(110 + len(raw)) % 4))
        out.write(data + b"\0" * (-len(data) % 4))
    return out.getvalue()
