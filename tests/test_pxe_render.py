"""``bmprov pxe render|clear``: stage rules, write-if-changed, local boot, prune, site overrides."""

from __future__ import annotations

import json

from tests.bootutil import import_nodes, set_stage

ROWS = [
    ["SN1", "52:54:00:00:00:01", "rocky9", "web1", "provisioning_auto"],
    ["SN2", "52:54:00:00:00:02 52:54:00:00:00:12", "debian12", "web2", "provisioning_auto"],
    ["SN3", "52:54:00:00:00:03", "ubuntu-24.04", "web3", "provisioning_auto"],
    ["SN4", "", "rocky9", "web4", "provisioning_auto"],
]
PXE1 = "tftpboot/pxelinux.cfg/01-52-54-00-00-00-01"


def render(cli, *args: str) -> dict:
    run = cli("pxe", "render", "--json", *args)
    data = json.loads(run.stdout)
    data["exit_code"] = run.exit_code
    return data


def test_stage_decides_install_or_local(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    first = render(cli)
    assert first["exit_code"] == 0
    assert "LOCALBOOT 0" in (site.dir / PXE1).read_text()  # purchasing: local boot
    assert not (site.dir / "http/ks/SN1.cfg").exists()
    set_stage(site, "os_provisioning")
    second = render(cli)
    assert second["exit_code"] == 0
    assert "inst.ks=http://10.20.0.1/ks/SN1.cfg" in (site.dir / PXE1).read_text()
    assert (site.dir / "http/ks/SN1.cfg").is_file()
    assert (site.dir / "http/ks/SN2.cfg").is_file()
    assert (site.dir / "http/ks/SN3/user-data").is_file()
    assert not any(r["serial"] == "SN4" for r in second["results"])  # no MAC: nothing to do
    set_stage(site, "failed", ["SN1"], failed_stage="installing")
    set_stage(site, "failed", ["SN2"], failed_stage="purchasing")
    third = render(cli)
    modes = {r["serial"]: r["details"]["mode"] for r in third["results"]}
    assert modes == {"SN2": "local boot"}  # SN1 failed while installing: entries unchanged
    assert "inst.ks=" in (site.dir / PXE1).read_text()
    assert not (site.dir / "http/ks/SN2.cfg").exists()  # local boot: no install file
    assert (site.dir / "http/ks/SN1.cfg").is_file()
    set_stage(site, "deployed", ["SN1", "SN3"])
    render(cli)
    assert "LOCALBOOT 0" in (site.dir / PXE1).read_text()
    # deployed: the install files (root password hash) are gone and stay gone (issue 9, item 4)
    assert sorted(p.name for p in (site.dir / "http/ks").iterdir()) == []
    assert render(cli)["files_written"] == 0
    assert not (site.dir / "http/ks/SN1.cfg").exists()


def test_render_removes_an_install_file_left_for_a_deployed_node(site, cli) -> None:
    """A file from before (an older bmprov, a copy by hand) goes at the next render."""
    import_nodes(site, cli, ROWS)
    set_stage(site, "deployed")
    render(cli)
    leftover = site.dir / "http/ks/SN1.cfg"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("rootpw --iscrypted $6$left$over\n")
    (site.dir / "http/ks/SN3").mkdir()
    (site.dir / "http/ks/SN3/user-data").write_text("#cloud-config\n")
    again = render(cli)
    assert again["exit_code"] == 0 and again["files_written"] == 0
    assert not leftover.exists() and not (site.dir / "http/ks/SN3").exists()


def test_second_render_writes_nothing_and_one_change_rewrites_one_node(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning")
    assert render(cli)["files_written"] > 0
    again = render(cli)
    assert again["files_written"] == 0
    assert again["unchanged_nodes"] == 3
    generated = [*(site.dir / "tftpboot").rglob("*"), *(site.dir / "http").rglob("*")]
    before = {p: p.stat().st_mtime_ns for p in generated if p.is_file()}
    changed = [row[:] for row in ROWS]
    changed[1][3] = "web2b"  # SN2's host name is in its preseed and its kernel command line
    import_nodes(site, cli, changed)
    third = render(cli)
    written = sorted(p.split("/site/")[1] for p in third["written"])
    assert written == [
        "http/ipxe/mac-52-54-00-00-00-02.ipxe",
        "http/ipxe/mac-52-54-00-00-00-12.ipxe",
        "http/ks/SN2.cfg",
        "tftpboot/grub/grub.cfg-01-52-54-00-00-00-02",
        "tftpboot/grub/grub.cfg-01-52-54-00-00-00-12",
        "tftpboot/pxelinux.cfg/01-52-54-00-00-00-02",
        "tftpboot/pxelinux.cfg/01-52-54-00-00-00-12",
    ]
    assert third["unchanged_nodes"] == 2
    for path, mtime in before.items():
        if "SN2" not in str(path) and "-02" not in path.name and "-12" not in path.name:
            assert path.stat().st_mtime_ns == mtime, path


def test_missing_file_is_rewritten(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    render(cli)
    (site.dir / PXE1).unlink()
    again = render(cli)
    assert [p.split("/site/")[1] for p in again["written"]] == [PXE1]


def test_clear_switches_every_artefact_to_local_boot_until_stage_changes(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning")
    render(cli)
    run = cli("pxe", "clear", "SN2", "--json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)["results"][0]
    assert result["serial"] == "SN2" and result["status"] == "ok"
    for mac in ("02", "12"):
        assert (
            "LOCALBOOT 0"
            in (site.dir / f"tftpboot/pxelinux.cfg/01-52-54-00-00-00-{mac}").read_text()
        )
        grub = (site.dir / f"tftpboot/grub/grub.cfg-01-52-54-00-00-00-{mac}").read_text()
        assert "chainloader" in grub and "linux" not in grub
        ipxe = (site.dir / f"http/ipxe/mac-52-54-00-00-00-{mac}.ipxe").read_text()
        assert "kernel" not in ipxe
    assert not (site.dir / "http/ks/SN2.cfg").exists()  # its root hash is no longer served
    assert (site.dir / "http/ks/SN1.cfg").is_file()
    assert render(cli)["files_written"] == 0  # a render does not undo the clear
    assert not (site.dir / "http/ks/SN2.cfg").exists()
    set_stage(site, "installing", ["SN2"])
    render(cli)
    assert "auto=true" in (site.dir / "tftpboot/pxelinux.cfg/01-52-54-00-00-00-02").read_text()
    assert (site.dir / "http/ks/SN2.cfg").is_file()  # installing again: it needs it again


def test_clear_unknown_serial_and_node_without_mac(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    run = cli("pxe", "clear", "NOPE")
    assert run.exit_code == 2
    assert "unknown serial(s): NOPE" in run.stderr
    run = cli("pxe", "clear", "SN4", "SN1", "--json")
    assert run.exit_code == 1
    results = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    assert results["SN4"]["status"] == "failed" and "no MAC" in results["SN4"]["message"]
    assert results["SN1"]["status"] == "ok"


def test_prune_lists_and_removes_only_when_asked(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning")
    render(cli)
    moved = [row[:] for row in ROWS]
    moved[0][1] = "52:54:00:00:00:99"  # SN1's NIC was swapped
    import_nodes(site, cli, moved)
    (site.dir / "http/ks/GONE.cfg").write_text("old")
    plain = render(cli)
    assert plain["stale"] == []
    listed = render(cli, "--prune")
    stale = sorted(p.split("/site/")[1] for p in listed["stale"])
    assert stale == [
        "http/ipxe/mac-52-54-00-00-00-01.ipxe",
        "http/ks/GONE.cfg",
        "tftpboot/grub/grub.cfg-01-52-54-00-00-00-01",
        PXE1,
    ]
    assert listed["removed"] == []
    assert (site.dir / PXE1).exists()
    run = cli("pxe", "render", "--prune")
    assert "re-run with --prune --yes" in run.stdout
    removed = render(cli, "--prune", "--yes")
    assert sorted(removed["removed"]) == sorted(listed["stale"])
    assert not (site.dir / PXE1).exists()
    assert (site.dir / "tftpboot/pxelinux.cfg/01-52-54-00-00-00-99").exists()
    assert (site.dir / "tftpboot/pxelinux.cfg/default").exists()
    assert render(cli, "--prune")["stale"] == []
    run = cli("pxe", "render", "--yes")
    assert run.exit_code == 2 and "--yes only confirms --prune" in run.stderr


def test_site_template_overrides_shipped(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    override = site.dir / "templates/pxe_templates/pxelinux"
    override.mkdir(parents=True)
    (override / "local.j2").write_text("# site local {{ serial | ks_token }}\nLOCALBOOT -1\n")
    site.config_path.write_text(
        site.config_path.read_text().replace("dirs = []", 'dirs = ["templates"]')
    )
    render(cli)
    assert (site.dir / PXE1).read_text() == "# site local SN1\nLOCALBOOT -1\n"
    grub = (site.dir / "tftpboot/grub/grub.cfg-01-52-54-00-00-00-01").read_text()
    assert "chainloader" in grub  # not overridden: shipped template
    (override / "local.j2").write_text("# changed {{ serial | ks_token }}\nLOCALBOOT -1\n")
    again = render(cli)  # a template change re-renders (the digest is in every fingerprint)
    assert (site.dir / PXE1).read_text().startswith("# changed SN1")
    assert again["files_written"] == 4  # three pxelinux entries changed, plus SN2's second MAC


def test_failure_is_per_node_and_names_template_and_line(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning")
    override = site.dir / "templates/kickstart"
    override.mkdir(parents=True)
    (override / "rocky9.j2").write_text("text\n{{ no_such_variable }}\n")
    site.config_path.write_text(
        site.config_path.read_text().replace("dirs = []", 'dirs = ["templates"]')
    )
    data = render(cli)
    assert data["exit_code"] == 1
    results = {r["serial"]: r for r in data["results"]}
    assert results["SN1"]["status"] == "failed"
    assert results["SN1"]["step"] == "install file"
    assert "templates/kickstart/rocky9.j2 line 2" in results["SN1"]["message"]
    assert "'no_such_variable' is undefined" in results["SN1"]["message"]
    assert results["SN2"]["status"] == "ok"
    assert not (site.dir / PXE1).exists()  # nothing of the failed node was written


def test_install_node_without_ip_fails_alone(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning")
    with site.db() as db, db.atomic() as conn:
        conn.execute("UPDATE nodes SET ip = NULL WHERE serial = 'SN1'")
    data = render(cli)
    results = {r["serial"]: r for r in data["results"]}
    assert results["SN1"]["status"] == "failed" and "no IP address" in results["SN1"]["message"]
    assert results["SN3"]["status"] == "ok"
    run = cli("pxe", "render")
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr


def test_failed_node_without_ip_is_skipped(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    set_stage(site, "failed", ["SN1"], failed_stage="networking", ip=None)
    set_stage(site, "networking", ["SN3"])
    data = render(cli)
    assert data["exit_code"] == 0
    results = {r["serial"]: r for r in data["results"]}
    assert results["SN1"]["status"] == "skipped"
    assert results["SN3"]["details"]["mode"] == "install"  # networking installs too


def test_help_lists_pxe_and_ks(cli) -> None:
    assert "pxe" in cli("--help").stdout
    run = cli("pxe", "--help")
    assert "render" in run.stdout and "clear" in run.stdout
    assert "validate" in cli("ks", "--help").stdout
