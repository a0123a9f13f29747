"""The test guest: a Debian kernel, a tiny busybox initrd, and a local disk that proves a boot.

The kernel and static busybox come from ``apt-get download`` (never installed) and are cached
with the built images under :func:`cache_dir`, keyed by a digest of the .deb names and of the
initrd's scripts, so only the first run downloads and builds (pxe-boot.md §4). The initrd is
written by :func:`cpio_newc` directly (device nodes included), so no mknod or cpio is needed.

Local disks (pxe-boot.md §4 "Local-disk proof"): a BIOS MBR that prints a marker on COM1 and
exits QEMU through ``isa-debug-exit`` with status 67, and for UEFI a FAT directory whose
``EFI/BOOT/BOOTX64.EFI`` (grub-mkimage) does the same.
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
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL_DISK_EXIT = 67  # (0x21 << 1) | 1 from isa-debug-exit
LOCAL_DISK_MARKER = "BMPQ-LOCALDISK-BOOTED"
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
    raise RuntimeError("no writable cache directory for the PXE test guest")


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


def guest_image() -> GuestImage:
    """Kernel + initrd, built once per kernel/busybox/script version."""
    cache = cache_dir()
    dl = cache / "dl"
    dl.mkdir(exist_ok=True)
    kdeb = download(kernel_package(), dl)
    bdeb = download("busybox-static", dl)
    key = hashlib.sha256(kdeb.name.encode() + bdeb.name.encode())
    for script in ("init.sh", "udhcpc.script", "guest.py"):
        key.update((HERE / script).read_bytes())
    out = cache / f"guest-{key.hexdigest()[:16]}"
    image = GuestImage(out / "vmlinuz", out / "initrd.gz")
    if not image.initrd.exists():
        _build(kdeb, bdeb, out)
        for old in cache.glob("guest-*"):  # builds of older scripts or packages
            if old != out:
                shutil.rmtree(old, ignore_errors=True)
    return image


def _build(kdeb: Path, bdeb: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="bmpQ-guest-") as tmp:
        work = Path(tmp)
        run("dpkg", "-x", kdeb, work / "k")
        run("dpkg", "-x", bdeb, work / "bb")
        busybox = work / "bb/bin/busybox"
        if "statically linked" not in run("file", busybox):
            raise RuntimeError(f"{busybox} is not statically linked")
        kver = next((work / "k/lib/modules").iterdir()).name
        run("depmod", "-b", work / "k", kver)
        moddir = work / f"k/lib/modules/{kver}"
        entries = _tree(busybox, _modules(moddir))
        out.mkdir(parents=True, exist_ok=True)
        kernel, initrd = out / f"vmlinuz.{os.getpid()}", out / f"initrd.gz.{os.getpid()}"
        shutil.copyfile(work / f"k/boot/vmlinuz-{kver}", kernel)
        initrd.write_bytes(gzip.compress(cpio_newc(entries), mtime=0))
        os.replace(kernel, out / "vmlinuz")  # the initrd last: it marks a complete build
        os.replace(initrd, out / "initrd.gz")


def _modules(moddir: Path) -> list[tuple[str, bytes]]:
    """NIC driver modules with their dependencies, in load order (deps first)."""
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

    for name in NIC_MODULES:
        visit(name)
    loaded = []
    for name in order:
        path = moddir / deps[name][0]
        if path.suffix != ".ko":
            raise RuntimeError(f"{path}: compressed modules are not supported")
        loaded.append((name, path.read_bytes()))
    return loaded


def _modname(path: str) -> str:
    return Path(path).name.split(".ko")[0]


Entry = tuple[str, int, bytes, tuple[int, int]]  # path, mode, data, (rdev major, minor)


def _tree(busybox: Path, modules: list[tuple[str, bytes]]) -> list[Entry]:
    d, x, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFREG | 0o644
    entries: list[Entry] = [
        (name, d, b"", (0, 0))
        for name in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp")
    ]
    entries += [
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),  # the kernel opens it before /init
        ("dev/null", stat.S_IFCHR | 0o666, b"", (1, 3)),
        ("bin/busybox", x, busybox.read_bytes(), (0, 0)),
        ("init", x, (HERE / "init.sh").read_bytes(), (0, 0)),
        ("etc/udhcpc.script", x, (HERE / "udhcpc.script").read_bytes(), (0, 0)),
        ("lib/modules/load.order", f, "".join(f"{n}\n" for n, _ in modules).encode(), (0, 0)),
    ]
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


def bios_disk(path: Path) -> Path:
    """A 1 MiB raw disk whose MBR prints the marker on COM1 and exits QEMU with status 67."""
    msg = f"\r\n{LOCAL_DISK_MARKER} (MBR)\r\n\0".encode()
    code = bytes.fromhex(
        "fa"  # cli
        "31c0 8ed8"  # xor ax,ax; mov ds,ax
        "be1a7c"  # mov si,0x7c1a (msg)
        "baf803"  # mov dx,0x3f8 (COM1)
        "ac 84c0 7403 ee ebf8"  # lodsb; test al,al; jz done; out dx,al; jmp lodsb
        "b021 e6f4"  # done: mov al,0x21; out 0xf4,al (isa-debug-exit)
        "f4 ebfd"  # hlt; jmp hlt
    )
    assert len(code) == 0x1A
    mbr = bytearray(512)
    mbr[: len(code) + len(msg)] = code + msg
    mbr[510:] = b"\x55\xaa"
    path.write_bytes(bytes(mbr) + bytes(1024 * 1024 - 512))
    return path


def uefi_esp(directory: Path) -> Path:
    """A directory (served as a vvfat ESP) whose EFI/BOOT/BOOTX64.EFI prints and exits 67."""
    boot = directory / "EFI" / "BOOT"
    boot.mkdir(parents=True, exist_ok=True)
    embedded = directory.parent / "esp-embedded.cfg"
    embedded.write_text(f'echo "{LOCAL_DISK_MARKER} (ESP)"\noutb 0xf4 0x21\nhalt\n')
    run(
        "grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c", embedded,
        "-o", boot / "BOOTX64.EFI", "echo", "iorw", "halt",
    )  # fmt: skip
    return directory
