"""Every OS profile × partition scheme × firmware renders a file its installer would install.

Each file is checked: pykickstart (anaconda's parser), bmprov's autoinstall schema (subset of
subiquity's documented format), ``debconf-set-selections --checkonly``; then the layout checks of
:mod:`bmprov.install.check` / :mod:`bmprov.install.partman` assert root, swap, /boot, the ESP
and BIOS boot partition on every boot disk, and the RAID level, members and spares of the scheme.
"""

from __future__ import annotations

import ast
import base64
import fcntl
import logging
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmprov.boot.osprofiles import BUILTIN_OS
from bmprov.boot.writer import NodeFileWriter
from bmprov.config import load_config
from bmprov.errors import StepFailed
from bmprov.install import check as installcheck
from bmprov.install import disklayout, partman
from bmprov.install.options import SCHEMES, InstallDefaults, callback_url
from bmprov.nodes import Node
from bmprov.setup_site import init_site

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"
PROFILES = sorted(BUILTIN_OS)


def node(os_name: str, scheme: str, disks: int, **extra: str) -> Node:
    options = {"partition_scheme": scheme, "disks": disks, "ssh_key": KEY, **extra}
    return Node(
        id=1,
        serial="SN1",
        stage="os_provisioning",
        macs=("52:54:00:12:34:56",),
        os=os_name,
        hostname="web1",
        install_options=options,
    )


def install_file(writer: NodeFileWriter, n: Node) -> str:
    files = writer.render_install(n, "10.20.0.50")
    return next(text for path, text in files.items() if "/ks/" in str(path))


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> NodeFileWriter:
    site = init_site(tmp_path_factory.mktemp("layouts") / "site")
    return NodeFileWriter(load_config(site.config_path))


@pytest.mark.parametrize("firmware", disklayout.FIRMWARES)
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("os_name", PROFILES)
def test_every_profile_scheme_and_firmware(writer, os_name, scheme, firmware) -> None:
    profile = BUILTIN_OS[os_name]
    n = node(os_name, scheme, SCHEMES[scheme])
    text = install_file(writer, n)
    layout = disklayout.plan(writer.install_options(n))
    if profile.install == "kickstart":
        installcheck.check_kickstart(text, layout, firmware, profile.ks_version)
    elif profile.install == "autoinstall":
        installcheck.check_autoinstall(text, layout, firmware)
    else:
        partman.check_preseed(text, layout, firmware)


@pytest.mark.skipif(shutil.which("debconf-set-selections") is None, reason="needs debconf")
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_preseeds_pass_debconf_checkonly(writer, scheme) -> None:
    """debconf's own parser accepts every line (a stray continuation or bad type fails it)."""
    text = install_file(writer, node("debian12", scheme, SCHEMES[scheme] + 1))
    assert partman.debconf_checkonly(text) is None
    assert partman.debconf_checkonly("d-i partman-auto/method\n") is not None


@pytest.mark.skipif(shutil.which("debconf-set-selections") is None, reason="needs debconf")
def test_debconf_checkonly_does_not_share_a_locked_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another debconf program holding the database made --checkonly exit 1, silently (seen
    when several suites or `ks validate` runs overlap): the check uses a private database."""
    conf = tmp_path / "debconf.conf"
    conf.write_text(
        f"Config: c\nTemplates: t\n\nName: c\nDriver: File\nFilename: {tmp_path}/config.dat\n\n"
        f"Name: t\nDriver: File\nFilename: {tmp_path}/templates.dat\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DEBCONF_SYSTEMRC", str(conf))  # the database a plain run would use...
    (tmp_path / "config.dat").touch()
    with (tmp_path / "config.dat").open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # ...is locked by "another debconf program"
        assert partman.debconf_checkonly("d-i debian-installer/locale string en_US\n") is None
        assert "Unknown type" in str(partman.debconf_checkonly("d-i foo/bar nosuchtype x\n"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scheme=st.sampled_from(sorted(SCHEMES)),
    extra=st.integers(min_value=0, max_value=9),
    os_name=st.sampled_from(PROFILES),
)
def test_any_disk_count_the_scheme_can_hold(writer, scheme, extra, os_name) -> None:
    """Whatever the disk count, the render-time check passes and the plan uses every disk."""
    count = SCHEMES[scheme] + extra
    n = node(os_name, scheme, count)
    install_file(writer, n)  # raises StepFailed if the render-time check fails
    layout = disklayout.plan(writer.install_options(n))
    assert len(layout.active) + len(layout.spares) == count
    assert layout.spares == (layout.disks[-1:] if scheme == "LVM_RAID10S" else ())
    assert layout.boot_disks == (layout.disks if layout.mirrored else layout.disks[:1])


def test_partition_names_follow_the_kernel() -> None:
    assert disklayout.partition_path("sda", 2) == "/dev/sda2"
    assert disklayout.partition_path("nvme0n1", 2) == "/dev/nvme0n1p2"
    assert disklayout.partition_path("disk/by-path/pci-0000:00:1f.2-ata-1", 1) == (
        "/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1"
    )


def test_nvme_preseed_names_partitions_with_p(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    text = site.config_path.read_text().replace(
        "disks = 1", 'disks = 1\ndisk_names = ["nvme0n1", "nvme1n1"]'
    )
    site.config_path.write_text(text)
    writer = NodeFileWriter(load_config(site.config_path))
    preseed = install_file(writer, node("debian12", "LVM_RAID1", 2))
    assert "/dev/nvme0n1p2#/dev/nvme1n1p2" in preseed


# ---- the checks catch what issue 10 found ----------------------------------------------------

OLD_DEBIAN_RAID = """\
d-i partman-auto/disk string /dev/sda /dev/sdb
d-i partman-auto/method string raid
d-i partman-auto/expert_recipe string multiraid :: 1024 10000 -1 raid $primary{ } method{ raid } .
d-i partman-auto-raid/recipe string 1 2 0 lvm - /dev/sda1#/dev/sdb1 .
"""


def test_the_old_debian_raid_recipe_is_refused() -> None:
    layout = disklayout.DiskLayout(
        "LVM_RAID1", ("sda", "sdb"), "1", ("sda", "sdb"), (), ("sda", "sdb")
    )
    with pytest.raises(ValueError, match=r"choose_recipe|mounted at /"):
        partman.check_preseed(OLD_DEBIAN_RAID, layout, "uefi")
    fixed = OLD_DEBIAN_RAID + "d-i partman-auto/choose_recipe select multiraid\n"
    with pytest.raises(ValueError, match="no logical volume is mounted at /"):
        partman.check_preseed(fixed, layout, "uefi")


def test_a_missing_bios_grub_or_second_esp_is_refused(writer) -> None:
    n = node("ubuntu-24.04", "LVM_RAID1", 2)
    text = install_file(writer, n)
    layout = disklayout.plan(writer.install_options(n))
    no_bios = "\n".join(line for line in text.splitlines() if "id: biosgrub2" not in line)
    installcheck.check_autoinstall(no_bios, layout, "uefi")
    with pytest.raises(ValueError, match="disk2 has no bios_grub partition"):
        installcheck.check_autoinstall(no_bios, layout, "bios")
    ks_node = node("rocky9", "LVM_RAID1", 2)
    ks = install_file(writer, ks_node)
    one_disk = ks.replace("part biosboot --fstype=biosboot --size=1 --ondisk=sdb\n", "")
    with pytest.raises(ValueError, match="biosboot partitions on"):
        installcheck.check_kickstart(one_disk, layout, "bios", "RHEL9")


def site_writer(tmp_path: Path, template: str, old: str, new: str) -> NodeFileWriter:
    """A site whose copy of the shipped ``kickstart/<template>`` has ``old`` replaced by ``new``."""
    site = init_site(tmp_path / "site")
    copy = tmp_path / "site" / "tpl" / "kickstart" / template
    copy.parent.mkdir(parents=True)
    shipped = Path(installcheck.data_dir("kickstart")) / template
    copy.write_text(shipped.read_text().replace(old, new))
    text = site.config_path.read_text().replace("dirs = []", 'dirs = ["tpl"]')
    site.config_path.write_text(text)
    return NodeFileWriter(load_config(site.config_path))


def test_render_refuses_a_template_that_breaks_the_layout(tmp_path: Path) -> None:
    writer = site_writer(tmp_path, "partitions/kickstart.j2", "logvol swap", "# logvol swap")
    with pytest.raises(StepFailed, match=r"pykickstart RHEL9 \+ layout check: BIOS: no root"):
        install_file(writer, node("rocky9", "LVM_HBA", 1))


def test_the_autoinstall_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(installcheck.autoinstall_schema())


@pytest.mark.parametrize(
    ("right", "typo", "where"),
    [
        ("  late-commands:", "  late-comands:", "autoinstall"),
        ("    allow-pw: false", "    allow_pw: false", "ssh"),
        ("        ssh_authorized_keys:", "        ssh_authorised_keys:", "user-data/users/0"),
        ("grub_device: true", "grub_devce: true", "storage/config/0"),
        ("{type: format, id: root-fs,", "{type: format, id: root-fs, fs_type: ext4,", "config"),
        ("  keyboard:\n    layout:", "  keyboard:\n    layuot:", "keyboard"),
    ],
)
def test_a_misspelt_autoinstall_key_is_refused(writer, right, typo, where) -> None:
    """The installer ignores (or warns about) a key it does not know; bmprov refuses it."""
    n = node("ubuntu-24.04", "LVM_RAID1", 2)
    text = install_file(writer, n)
    layout = disklayout.plan(writer.install_options(n))
    assert right in text
    bad = text.replace(right, typo, 1)
    with pytest.raises(
        ValueError, match=rf"autoinstall schema: [^:]*{where}[^:]*: .*(not allowed|required)"
    ):
        installcheck.check_autoinstall(bad, layout, "uefi")


def test_render_refuses_a_misspelt_autoinstall_template(tmp_path: Path) -> None:
    writer = site_writer(tmp_path, "autoinstall.j2", "  timezone:", "  timzone:")
    with pytest.raises(StepFailed, match=r"bmprov's autoinstall schema .*'timzone' was unexpected"):
        install_file(writer, node("ubuntu-22.04", "LVM_HBA", 1))


# ---- login and callbacks ---------------------------------------------------------------------


def test_a_node_nobody_can_log_into_is_refused(tmp_path: Path) -> None:
    defaults = InstallDefaults()  # no [install] key, no password
    with pytest.raises(ValueError, match="nobody could log in"):
        defaults.for_node({})
    assert defaults.for_node({"ssh_key": KEY}).ssh_keys == (KEY,)


def test_a_fresh_site_has_a_private_site_key(tmp_path: Path) -> None:
    site = init_site(tmp_path / "site")
    private = tmp_path / "site" / "ssh" / "bmprov_ed25519"
    assert private.stat().st_mode & 0o077 == 0
    public = (tmp_path / "site" / "ssh" / "bmprov_ed25519.pub").read_text().strip()
    assert InstallDefaults.from_config(load_config(site.config_path)).ssh_keys == (public,)
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_callback_must_name_the_server_by_address(writer) -> None:
    assert callback_url("http://10.20.0.1:8080/cb") == "http://10.20.0.1:8080/cb"
    assert callback_url("http://[2001:db8::1]/cb") == "http://[2001:db8::1]/cb"
    with pytest.raises(ValueError, match="is a name"):
        callback_url("http://bmprov.example.net/cb")
    text = install_file(
        writer, node("ubuntu-22.04", "LVM_HBA", 1, callback_url="http://10.20.0.1/cb")
    )
    late = yaml.safe_load(text)["autoinstall"]["late-commands"][0]
    script = base64.b64decode(late.split("echo ", 1)[1].split(" ", 1)[0]).decode()
    assert "--retry 5 --retry-connrefused" in script and "-G http://10.20.0.1/cb" in script
    assert "tee -a /var/log/bmprov-callback.log >&2" in script  # a failure is logged, not lost


def items_of(config: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [i for i in config if i["type"] == kind]


def curtin_function(anchor: str, name: str) -> Any:
    """``name`` from curtin/commands/curthooks.py, compiled on its own (module imports need
    python-apt); it uses only ``LOG``."""
    path = Path(anchor).parent / "commands" / "curthooks.py"
    tree = ast.parse(path.read_text())
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict[str, Any] = {"LOG": logging.getLogger("curtin")}
    exec(compile(ast.Module([func], []), str(path), "exec"), namespace)  # noqa: S102
    return namespace[name]


def curtin_view(text: str) -> list[dict[str, object]]:
    """The storage config as subiquity hands it to curtin: its ``size: -1`` (final partition
    or LV) resolved to a size, as subiquity does from the probed disk."""
    config = yaml.safe_load(text)["autoinstall"]["storage"]["config"]
    for item in config:
        if item.get("size") == -1:
            item["size"] = "100G"
    return config


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("os_name", ["ubuntu-22.04", "ubuntu-24.04"])
def test_curtin_accepts_the_storage_config(writer, os_name, scheme) -> None:
    """curtin's own validate_config (not on PyPI: runs where curtin is importable)."""
    storage_config = pytest.importorskip("curtin.storage_config")
    n = node(os_name, scheme, SCHEMES[scheme])
    config = curtin_view(install_file(writer, n))
    storage_config.validate_config({"version": 1, "config": config})
    # validate_config's top-level draft-04 schema ignores the per-type "const" under jsonschema 4
    # (a raidlevel 3 passes it), so each item is also checked against its own type's schema, as
    # curtin itself does on an error:
    types_ = storage_config.get_storage_types()
    for item in config:
        jsonschema.validate(item, types_[item["type"]].schema)
    for raid in items_of(config, "raid"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**raid, "raidlevel": 3}, types_["raid"].schema)
    # On UEFI curtin installs GRUB to these ESPs: one on every boot disk, the mounted one first.
    # curthooks imports python-apt and python-debian, absent here: its function is taken alone.
    curthooks = curtin_function(storage_config.__file__, "uefi_find_grub_device_ids")
    ids = curthooks({i["id"]: i for i in config})
    boot_disks = disklayout.plan(writer.install_options(n)).boot_disks
    assert ids == [f"esp{k}" for k in range(1, len(boot_disks) + 1)]


def test_lvmignore_drops_a_partition_in_the_lvm_method(writer) -> None:
    """partman-auto-lvm skips $lvmignore entries: an ESP tagged so would not exist."""
    n = node("debian12", "LVM_HBA", 1)
    text = install_file(writer, n)
    layout = disklayout.plan(writer.install_options(n))
    partman.check_preseed(text, layout, "uefi")
    bad = text.replace("method{ efi }", "$lvmignore{ } method{ efi }")
    with pytest.raises(ValueError, match="no EFI system partition"):
        partman.check_preseed(bad, layout, "uefi")
