"""Per-MAC boot entries and install files: names, structure of every template, writes."""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import replace

import pytest

from bmprov.boot.names import grub_name, ipxe_name, pxelinux_name
from bmprov.boot.writer import NodeFileWriter
from bmprov.errors import ConfigError, StepFailed
from bmprov.install.options import hash_password
from bmprov.nodes import Node
from tests.bootutil import edit_config

MAC1 = "52:54:00:12:34:56"
MAC2 = "52:54:00:12:34:57"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"


def node(**kw) -> Node:
    base = {
        "id": 1,
        "serial": "SN1",
        "stage": "os_provisioning",
        "macs": (MAC1,),
        "os": "rocky9",
        "hostname": "web1",
        "ip": "10.20.0.50",
    }
    return Node(**{**base, **kw})


@pytest.fixture
def writer(site) -> NodeFileWriter:
    return NodeFileWriter(site.config)


def rel(site, files) -> dict[str, str]:
    return {str(p.relative_to(site.dir)): text for p, text in files.items()}


def test_names_are_what_the_loaders_request() -> None:
    assert pxelinux_name(MAC1) == "pxelinux.cfg/01-52-54-00-12-34-56"
    assert grub_name(MAC1) == "grub/grub.cfg-01-52-54-00-12-34-56"
    assert grub_name(MAC1, "boot/grub") == "boot/grub/grub.cfg-01-52-54-00-12-34-56"
    assert ipxe_name(MAC1) == "ipxe/mac-52-54-00-12-34-56.ipxe"


def test_install_entries_for_every_mac(site, writer) -> None:
    files = rel(site, writer.render_install(node(macs=(MAC1, MAC2)), "10.20.0.50"))
    assert sorted(files) == [
        "http/ipxe/mac-52-54-00-12-34-56.ipxe",
        "http/ipxe/mac-52-54-00-12-34-57.ipxe",
        "http/ks/SN1.cfg",
        "tftpboot/grub/grub.cfg-01-52-54-00-12-34-56",
        "tftpboot/grub/grub.cfg-01-52-54-00-12-34-57",
        "tftpboot/pxelinux.cfg/01-52-54-00-12-34-56",
        "tftpboot/pxelinux.cfg/01-52-54-00-12-34-57",
    ]
    url = "inst.ks=http://10.20.0.1/ks/SN1.cfg"
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"].splitlines()
    assert pxe[1:] == [
        "DEFAULT install",
        "LABEL install",
        "  KERNEL rocky9/vmlinuz",
        "  INITRD rocky9/initrd.img",
        f"  APPEND {url} inst.repo=http://10.20.0.1/repo/rocky9 ip=dhcp inst.text",
        "  IPAPPEND 2",
    ]
    grub = files["tftpboot/grub/grub.cfg-01-52-54-00-12-34-57"]
    assert f"linux /rocky9/vmlinuz '{url}'" in grub
    assert "'BOOTIF=01-52-54-00-12-34-57'" in grub
    assert "initrd /rocky9/initrd.img" in grub
    ipxe = files["http/ipxe/mac-52-54-00-12-34-56.ipxe"].splitlines()
    assert ipxe[0] == "#!ipxe"
    assert ipxe[2].startswith("kernel tftp://10.20.0.1/rocky9/vmlinuz initrd=initrd.img " + url)
    assert ipxe[3] == "initrd --name initrd.img tftp://10.20.0.1/rocky9/initrd.img"
    assert ipxe[4] == "boot"


def test_local_boot_entries(site, writer) -> None:
    files = rel(site, writer.render_local(node(macs=(MAC1, MAC2))))
    assert len(files) == 6
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    assert "LOCALBOOT 0" in pxe and "KERNEL" not in pxe
    grub = files["tftpboot/grub/grub.cfg-01-52-54-00-12-34-57"]
    assert "search --no-floppy --file --set=esp /EFI/BOOT/BOOTX64.EFI" in grub
    assert "chainloader ($esp)/EFI/BOOT/BOOTX64.EFI" in grub
    assert "insmod part_gpt" in grub and "insmod part_msdos" in grub  # else no ESP is found
    assert "exit" not in grub
    ipxe = files["http/ipxe/mac-52-54-00-12-34-56.ipxe"]
    assert "chain tftp://10.20.0.1/grub/x86_64-efi/core.efi" in ipxe
    assert "sanboot --no-describe --drive 0x80" in ipxe


def test_defaults_boot_local_disk(site, writer) -> None:
    written = writer.write_defaults()
    assert {str(p.relative_to(site.dir)) for p in written} == {
        "tftpboot/pxelinux.cfg/default",
        "tftpboot/grub/grub.cfg",
        "http/boot.ipxe",
    }
    assert "LOCALBOOT 0" in (site.dir / "tftpboot/pxelinux.cfg/default").read_text()
    assert "chainloader" in (site.dir / "tftpboot/grub/grub.cfg").read_text()
    boot = (site.dir / "http/boot.ipxe").read_text()
    assert "chain http://10.20.0.1/ipxe/mac-${net0/mac:hexhyp}.ipxe || goto local" in boot
    assert writer.write_defaults() == []


def test_kickstart_structure(site, writer) -> None:
    options = {
        "partition_scheme": "LVM_RAID10S",
        "disks": 5,
        "root_password_hash": str(hash_password("Secret123")),
        "ssh_key": KEY,
        "callback_url": "http://10.20.0.1:8080/cb",
        "post_script": "example",
    }
    files = rel(site, writer.render_install(node(install_options=options), "10.20.0.50"))
    ks = files["http/ks/SN1.cfg"]
    lines = ks.splitlines()
    assert "url --url=http://10.20.0.1/repo/rocky9" in lines
    assert "network --bootproto=dhcp --device=link --activate --hostname=web1.example.net" in lines
    assert any(line.startswith("rootpw --iscrypted $6$") for line in lines)
    assert f'sshkey --username=root "{KEY}"' in lines
    assert (
        "raid pv.01 --device=data --level=RAID10 --spares=1 "
        + " ".join(f"raid.data{i}" for i in range(1, 6))
        in lines
    )
    assert "ignoredisk --only-use=sda,sdb,sdc,sdd,sde" in lines
    assert "--retry 5 --retry-connrefused" in ks and "-G http://10.20.0.1:8080/cb" in ks
    assert 'callback failed after retries:" http://10.20.0.1:8080/cb' in ks  # logged
    assert "| base64 -d > /root/bmprov-post.sh" in ks
    assert "Secret123" not in ks


def test_preseed_structure(site, writer) -> None:
    n = node(os="debian12", install_options={"partition_scheme": "LVM_RAID1", "disks": 2})
    files = rel(site, writer.render_install(n, "10.20.0.50"))
    preseed = files["http/ks/SN1.cfg"].splitlines()
    assert "d-i netcfg/get_hostname string web1" in preseed
    assert "d-i mirror/http/hostname string 10.20.0.1" in preseed
    assert "d-i mirror/http/directory string /repo/debian12" in preseed
    assert "d-i partman-auto/method string raid" in preseed
    assert "d-i partman-auto/disk string /dev/sda /dev/sdb" in preseed
    assert any(
        line.startswith("d-i preseed/late_command string in-target sh -c") for line in preseed
    )
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    assert "KERNEL debian12/linux" in pxe
    assert "auto=true priority=critical url=http://10.20.0.1/ks/SN1.cfg" in pxe


def test_autoinstall_structure(site, writer) -> None:
    yaml = pytest.importorskip("yaml")
    n = node(
        os="ubuntu-24.04", install_options={"ssh_key": KEY, "callback_url": "http://10.0.0.9/c"}
    )
    files = rel(site, writer.render_install(n, "10.20.0.50"))
    data = yaml.safe_load(files["http/ks/SN1/user-data"])
    assert files["http/ks/SN1/user-data"].startswith("#cloud-config\n")
    auto = data["autoinstall"]
    assert auto["version"] == 1
    storage = auto["storage"]["config"]
    assert [i["path"] for i in storage if i["type"] == "disk"] == ["/dev/sda"]
    assert {i.get("flag") for i in storage if i["type"] == "partition"} >= {"bios_grub", "boot"}
    assert auto["user-data"]["users"][0]["ssh_authorized_keys"] == [KEY]
    assert auto["late-commands"][0].startswith("curtin in-target -- sh -c 'echo ")
    meta = yaml.safe_load(files["http/ks/SN1/meta-data"])
    assert meta == {"instance-id": "bmprov-SN1", "local-hostname": "web1"}
    grub = files["tftpboot/grub/grub.cfg-01-52-54-00-12-34-56"]
    assert "'ds=nocloud-net;s=http://10.20.0.1/ks/SN1/'" in grub
    raid = node(os="ubuntu-22.04", install_options={"partition_scheme": "LVM_RAID10", "disks": 4})
    config = yaml.safe_load(
        rel(site, writer.render_install(raid, "10.20.0.50"))["http/ks/SN1/user-data"]
    )["autoinstall"]["storage"]["config"]
    md = {item["id"]: item for item in config if item["type"] == "raid"}
    assert md["md-data"]["raidlevel"] == 10
    assert md["md-data"]["devices"] == ["data1", "data2", "data3", "data4"]
    assert md["md-boot"]["raidlevel"] == 1  # /boot mirrored over every disk
    disks = [i for i in config if i["type"] == "disk"]
    assert all(d["grub_device"] and d["ptable"] == "gpt" for d in disks)
    for n in range(1, 5):  # an ESP and a BIOS boot partition on every member
        assert {i.get("flag") for i in config if i.get("device") == f"disk{n}"} >= {
            "boot",
            "bios_grub",
        }


def test_only_an_empty_os_falls_back_to_default(site, writer) -> None:
    for os_name in (None, ""):
        files = rel(site, writer.render_install(node(os=os_name), "10.20.0.50"))
        assert "KERNEL rocky9/vmlinuz" in files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    # an OS with no profile is never installed as another one (issue 9, item 1)
    for os_name in ("plan9", "ubuntu", "ubuntu_webserver"):
        with pytest.raises(StepFailed) as info:
            writer.write(node(os=os_name), "10.20.0.50")
        assert info.value.step == "os"
        assert f"unknown OS {os_name!r} (known: alma9, debian12, rhel9," in info.value.reason
        assert f"[boot.os.{os_name}] base = " in info.value.reason
        if os_name == "ubuntu":
            assert "did you mean 'ubuntu-24.04'?" in info.value.reason
    assert not (site.dir / "http" / "ks").exists() or not any((site.dir / "http/ks").iterdir())


def test_site_os_name_maps_to_a_shipped_profile(site) -> None:
    """``base`` inherits every field, installs from the base's media; keys override."""
    site.write_config(
        '[boot.os.ubuntu_webserver]\nbase = "ubuntu-24.04"\n'
        '[boot.os.web_small]\nbase = "ubuntu_webserver"\nrepo = "http://10.20.0.1/web.iso"\n'
        '[boot.os.rocky_db]\nbase = "rocky9"\nks_version = "RHEL9"\n'
    )
    writer = NodeFileWriter(site.config)
    web = writer.settings.profile("ubuntu_webserver")
    assert (web.install, web.template, web.kernel, web.bases) == (
        "autoinstall",
        "subiquity",
        "ubuntu-24.04/vmlinuz",
        ("ubuntu-24.04",),
    )
    files = rel(site, writer.render_install(node(os="ubuntu_webserver"), "10.20.0.50"))
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    assert "KERNEL ubuntu-24.04/vmlinuz" in pxe
    assert "http://10.20.0.1/repo/ubuntu-24.04/ubuntu-24.04.iso" in pxe
    assert "(ubuntu_webserver)" in files["http/ks/SN1/user-data"]
    small = writer.settings.profile("web_small")
    assert small.bases == ("ubuntu_webserver", "ubuntu-24.04") and small.media == "ubuntu-24.04"
    assert (
        "http://10.20.0.1/web.iso"
        in rel(site, writer.render_install(node(os="web_small"), "10.20.0.50"))[
            "tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"
        ]
    )
    assert writer.settings.profile("rocky_db").install == "kickstart"


@pytest.mark.parametrize(
    ("tables", "needle"),
    [
        ('[boot.os.web]\nbase = "ubuntu"', "os.web.base 'ubuntu' is not an OS profile (known:"),
        ('[boot.os.a]\nbase = "b"\n[boot.os.b]\nbase = "a"', "a loop (a → b → a)"),
        ('[boot.os.a]\nbase = "a"', "a loop (a → a)"),
    ],
)
def test_bad_os_mapping_is_a_config_error(site, tables: str, needle: str) -> None:
    site.write_config(tables)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        NodeFileWriter(site.config)


def test_write_only_changes_mode_0644(site, writer) -> None:
    n = node(macs=(MAC1, MAC2))
    first = writer.write(n, "10.20.0.50")
    assert len(first) == 7
    for path in first:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert writer.write(n, "10.20.0.50") == []
    changed = writer.write(replace(n, hostname="web9"), "10.20.0.50")
    assert [p.name for p in changed] == ["SN1.cfg"]  # the boot entries do not name the host
    assert len(writer.local_boot(n)) == 6
    assert writer.local_boot(n) == []


def test_no_mac_is_a_step_failure(writer) -> None:
    with pytest.raises(StepFailed) as info:
        writer.write(node(macs=()), "10.20.0.50")
    assert info.value.step == "boot files"
    assert "no MAC" in str(info.value)
    with pytest.raises(StepFailed):
        writer.local_boot(node(macs=()))


def test_scheme_that_the_disks_cannot_hold_fails(writer) -> None:
    n = node(install_options={"partition_scheme": "LVM_RAID10", "disks": 3})
    with pytest.raises(StepFailed) as info:
        writer.write(n, "10.20.0.50")
    assert info.value.step == "install file"
    assert "LVM_RAID10 needs at least 4 disks" in str(info.value)


def test_missing_post_script_names_it(writer) -> None:
    with pytest.raises(StepFailed, match=r"post/nope\.sh not found"):
        writer.write(node(install_options={"post_script": "nope"}), "10.20.0.50")


def test_config_section_values(site) -> None:
    edit_config(site, "http_port = 80", "http_port = 8080")
    edit_config(site, 'grub_prefix = "grub"', 'grub_prefix = "boot/grub"')
    edit_config(site, "kernel_args = []", 'kernel_args = ["console=ttyS0,115200"]')
    site.write_config('[boot.os.rocky9]\nrepo = "http://mirror.example.net/rocky/9"')
    writer = NodeFileWriter(site.config)
    files = rel(site, writer.render_install(node(), "10.20.0.50"))
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    assert "inst.ks=http://10.20.0.1:8080/ks/SN1.cfg" in pxe
    assert "inst.repo=http://mirror.example.net/rocky/9" in pxe
    assert "console=ttyS0,115200" in pxe
    assert "tftpboot/boot/grub/grub.cfg-01-52-54-00-12-34-56" in files


def test_site_adds_an_os_profile(site, cli) -> None:
    site.write_config('[boot.os.rocky8]\nks_version = "RHEL8"\nrepo = "http://10.20.0.1/r8"')
    writer = NodeFileWriter(site.config)
    files = rel(site, writer.render_install(node(os="rocky8"), "10.20.0.50"))
    pxe = files["tftpboot/pxelinux.cfg/01-52-54-00-12-34-56"]
    assert "KERNEL rocky8/vmlinuz" in pxe and "inst.repo=http://10.20.0.1/r8" in pxe
    run = cli("ks", "validate")
    assert run.exit_code == 0
    assert "sample rocky8/anaconda/LVM_HBA" in run.stdout
    assert "pykickstart RHEL8" in run.stdout


def test_directories_and_files_readable_under_a_strict_umask(site, writer) -> None:
    old = os.umask(0o077)
    try:
        writer.write(node(os="ubuntu-24.04"), "10.20.0.50")
    finally:
        os.umask(old)
    for path in [*(site.dir / "tftpboot").rglob("*"), *(site.dir / "http").rglob("*")]:
        want = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == want, path


def test_writer_remakes_a_directory_removed_under_it(site, writer) -> None:
    writer.write(node(), "10.20.0.50")
    shutil.rmtree(site.dir / "tftpboot" / "pxelinux.cfg")
    written = writer.write(node(id=2, serial="SN2", macs=(MAC2,)), "10.20.0.51")
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / "01-52-54-00-12-34-57"
    assert entry in written and entry.is_file()
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o755


def test_options_shared_by_nodes_are_checked_for_each_and_name_it(writer) -> None:
    bad = {"partition_scheme": "LVM_RAID10", "disks": 3}
    for serial in ("SN1", "SN2"):
        with pytest.raises(StepFailed, match=f"node {serial}: .*needs at least 4 disks"):
            writer.write(node(serial=serial, install_options=bad), "10.20.0.50")
    good = {"partition_scheme": "LVM_RAID1", "disks": 2}
    first = writer.render_install(node(install_options=good), "10.20.0.50")
    second = writer.render_install(node(serial="SN2", install_options=good), "10.20.0.51")
    assert any("--level=RAID1" in text for text in first.values())
    assert any("SN2" in text and "--level=RAID1" in text for text in second.values())


def test_listed_directories_keep_write_if_changed(site, monkeypatch) -> None:
    from bmprov.boot import writer as bootfiles

    monkeypatch.setattr(bootfiles._Dirs, "LIST_AFTER", 2)
    NodeFileWriter(site.config).write_defaults()  # the directories exist before the batch
    nodes = [node(id=i, serial=f"SN{i}", macs=(f"52:54:00:00:00:{i:02x}",)) for i in range(1, 8)]
    writer = NodeFileWriter(site.config)
    assert sum(len(writer.write(n, "10.20.0.50")) for n in nodes) == 7 * 4
    again = NodeFileWriter(site.config)
    assert [again.write(n, "10.20.0.50") for n in nodes] == [[]] * 7
    changed = again.write(replace(nodes[5], hostname="web9"), "10.20.0.50")
    assert [p.name for p in changed] == ["SN6.cfg"]
