"""Hostile bmprov.toml files and config paths: a clear ``Error:`` naming file and key, exit 2.

Never a traceback, never an ``internal error`` line, nothing written. Driven through the CLI
in-process (``cli`` fixture); a few cases also run ``python -m bmprov`` for real.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import Site
from tests.hostile import BAD_INPUT, assert_bad_input, bmprov, unprivileged


def set_key(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key = value`` in ``[section]`` (replaced if present, else added)."""
    lines = text.split("\n")
    header = f"[{section}]"
    start = lines.index(header) + 1 if header in lines else None
    if start is None:
        return f"{text}\n{header}\n{key} = {value}\n"
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start, end):
        if re.match(rf"{re.escape(key)}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines)
    lines.insert(start, f"{key} = {value}")
    return "\n".join(lines)


def state_bytes(site: Site) -> bytes:
    """The state file's bytes, to show a rejected command wrote nothing."""
    path = site.dir / "bmprov.sqlite"
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# --- the file itself -------------------------------------------------------------------------


def test_config_not_utf8_names_file_and_line(cli, site: Site) -> None:
    text = site.config_path.read_bytes()
    site.config_path.write_bytes(text + b"\n# caf\xe9 \xff\n")
    line = text.count(b"\n") + 2
    assert_bad_input(cli("nodes", "list"), str(site.config_path), f"line {line}", "UTF-8")


def test_invalid_toml_carries_line_and_column(cli, site: Site) -> None:
    text = site.config_path.read_text()
    site.config_path.write_text(text + "\n[network\nx = 1\n")
    line = text.count("\n") + 2
    assert_bad_input(
        cli("nodes", "list"), str(site.config_path), "not valid TOML", f"line {line}", "column"
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("network", "subnet", "5", "network.subnet: not of type 'string'"),
        ("network", "dns", "'10.20.0.1'", "network.dns: not of type 'array'"),
        ("network", "server_address", "'10.20.0.300'", "network.server_address: '10.20.0.300'"),
        ("network", "gateway", "'gw'", "network.gateway: 'gw' is not a valid ipv4 address"),
        ("network", "interface", "'eth0; reboot'", "network.interface: 'eth0; reboot'"),
        ("boot", "http_port", "'eighty'", "boot.http_port: not of type 'integer'"),
        ("boot", "http_port", "70000", "boot.http_port: "),
        ("boot", "kernel_args", "['a b']", "boot.kernel_args.0: "),
        ("boot", "tftp_root", "''", "boot.tftp_root: "),
        ("install", "disks", "0", "install.disks: less than the minimum of 1"),
        ("install", "ssh_keys", "'ssh-ed25519 AAAA'", "install.ssh_keys: not of type 'array'"),
        ("install", "partition_scheme", "'RAID5'", "install.partition_scheme: not one of"),
        ("power", "concurrency", "'many'", "power.concurrency: not of type 'integer'"),
        ("power", "stagger", "-1", "power.stagger: less than the minimum of 0"),
        ("power", "auto_on_provisioning", "'yes'", "power.auto_on_provisioning: not of type"),
        ("import", "marker_pattern", "3", "import.marker_pattern: not of type 'string'"),
        ("import", "marker_field", "'serial'", "import.marker_field: not one of"),
        ("import", "marker_pattern", "'(['", "import.marker_pattern: not a regular expression"),
        ("dhcp", "backend", "'isc'", "dhcp.backend: not one of"),
        ("dhcp", "next_server", "'10.20.0'", "dhcp.next_server: '10.20.0' is not a valid ipv4"),
        ("dhcp", "boot_filename", "'a b'", "dhcp.boot_filename: "),
        ("bmc", "timeout", "0", "bmc.timeout: "),
        ("bmc", "uefi", "'true'", "bmc.uefi: not of type 'boolean'"),
        ("bmc", "driver", "'telnet'", "bmc.driver: not one of"),
        ("templates", "dirs", "'site-templates'", "templates.dirs: not of type 'array'"),
    ],
)
def test_wrong_types_name_the_key(
    cli, site: Site, section: str, key: str, value: str, message: str
) -> None:
    before = state_bytes(site)
    site.config_path.write_text(set_key(site.config_path.read_text(), section, key, value))
    assert_bad_input(cli("nodes", "list"), str(site.config_path), message)
    assert state_bytes(site) == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[bogus]\nx = 1", "(top level): unknown key(s): bogus"),
        ("[dhcp.kea]\npth = 'x'", "dhcp.kea: unknown key(s): pth"),
        ("[bmc.racks.r1]\nport = 'x'", "bmc.racks.r1.port: not of type 'integer'"),
        ("[boot.os.rocky9]\ninstall = 'floppy'", "boot.os.rocky9.install: not one of"),
    ],
)
def test_unknown_keys_and_nested_tables(cli, site: Site, extra: str, message: str) -> None:
    site.write_config(extra)
    assert_bad_input(cli("nodes", "list"), str(site.config_path), message)


def test_secret_values_are_never_echoed(cli, site: Site) -> None:
    site.write_config("[bmc.nodes.SN1]\npassword = 7\npasswd = 'hunter2-secret'")
    run = cli("nodes", "list")
    assert_bad_input(run, "bmc.nodes.SN1")
    assert "hunter2-secret" not in run.stderr + run.stdout


# --- where the config comes from -------------------------------------------------------------


def test_config_option_missing_directory_devnull(cli, site: Site, tmp_path: Path) -> None:
    assert_bad_input(cli("--config", tmp_path / "nope.toml", "nodes", "list"), "does not exist")
    assert_bad_input(cli("--config", tmp_path, "nodes", "list"), str(tmp_path), "is a directory")
    assert_bad_input(cli("--config", "/dev/null", "nodes", "list"), "/dev/null", "not a regular")


def test_bmprov_config_pointing_nowhere(cli, site: Site, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BMPROV_CONFIG", str(tmp_path / "gone" / "bmprov.toml"))
    assert_bad_input(cli("nodes", "list"), "$BMPROV_CONFIG", "gone/bmprov.toml", "does not exist")
    monkeypatch.setenv("BMPROV_CONFIG", str(tmp_path))
    assert_bad_input(cli("nodes", "list"), "$BMPROV_CONFIG", "is a directory")


def test_unreadable_config_file_real_process(site: Site) -> None:
    """Root reads any file: the child drops CAP_DAC_OVERRIDE so the mode counts."""
    site.config_path.chmod(0o200)
    run = bmprov("--config", site.config_path, "nodes", "list", prefix=unprivileged())
    assert run.exit_code == BAD_INPUT
    assert "is not readable" in run.stderr  # Click checks --config itself
    assert "Traceback" not in run.stderr
    env = {**os.environ, "BMPROV_CONFIG": str(site.config_path)}
    run = bmprov("nodes", "list", prefix=unprivileged(), env=env)
    assert_bad_input(run, "cannot read config file", str(site.config_path))


def test_real_process_bad_config_has_no_traceback(site: Site) -> None:
    site.config_path.write_bytes(b"state = \xff\n")
    assert_bad_input(bmprov("--config", site.config_path, "nodes", "list"), "UTF-8")


def mounted_node(cli, tmp_path: Path) -> None:
    """Import SN1 (automated, with a MAC) and move it to mounting: ready for networking."""
    sheet = tmp_path / "s.csv"
    sheet.write_text("serial,mac,hostname,notes\nSN1,52:54:00:00:00:01,h1,provisioning_auto\n")
    assert cli("import", sheet).exit_code == 0
    assert cli("advance", "--stage", "mounting", "--all").exit_code == 0


# --- address pools ---------------------------------------------------------------------------


def pool(name: str, subnet: str, extra: str = "") -> str:
    """One ``[[pools]]`` table."""
    return f'[[pools]]\nname = "{name}"\nsubnet = "{subnet}"\n{extra}'


@pytest.mark.parametrize(
    ("pools", "message"),
    [
        ([pool("a", "10.20.0.5/24")], "pools[0].subnet: '10.20.0.5/24' has host bits set"),
        ([pool("a", "10.20.0.0/33")], "pools[0].subnet: '10.20.0.0/33' is not an IPv4 CIDR"),
        (
            [pool("a", "10.20.0.0/24", 'range = ["10.20.1.1", "10.20.1.9"]')],
            "pools[0].range: 10.20.1.1-10.20.1.9 is outside 10.20.0.0/24",
        ),
        (
            [pool("a", "10.20.0.0/24", 'gateway = "10.30.0.1"')],
            "pools[0].gateway: 10.30.0.1 is outside 10.20.0.0/24",
        ),
        (
            [pool("a", "10.20.0.0/24"), pool("b", "10.20.0.0/25")],
            "pools[0] (a) and pools[1] (b) both hand out 10.20.0.2-10.20.0.126",
        ),
        (
            [pool("a", "10.20.0.0/24"), pool("a", "10.21.0.0/24")],
            "pools: name 'a' is used twice",
        ),
    ],
)
def test_bad_pools_name_file_and_key(cli, site: Site, pools: list[str], message: str) -> None:
    site.write_config("\n".join(pools))
    for command in (("dhcp", "list"), ("dhcp", "export", "--format", "isc")):
        assert_bad_input(cli(*command), f"{site.config_path}: {message}")


def test_pools_sharing_a_subnet_with_disjoint_ranges_are_fine(cli, site: Site) -> None:
    site.write_config(
        pool("a", "10.20.0.0/24", 'rack = "r1"\nrange = "10.20.0.10-10.20.0.99"')
        + "\n"
        + pool("b", "10.20.0.0/24", 'range = "10.20.0.100-10.20.0.199"')
    )
    assert cli("dhcp", "list").exit_code == 0


def test_network_subnet_with_host_bits(cli, site: Site) -> None:
    text = set_key(site.config_path.read_text(), "network", "subnet", "'10.20.0.1/24'")
    site.config_path.write_text(text)
    assert_bad_input(cli("dhcp", "list"), str(site.config_path), "network.subnet", "host bits")


def test_advance_with_a_bad_pool_moves_nothing(cli, site: Site, tmp_path: Path) -> None:
    """A config error is the operator's to fix: no node may end up failed (or half-moved)."""
    mounted_node(cli, tmp_path)
    site.write_config(pool("a", "10.20.0.7/24"))
    before = state_bytes(site)
    for extra in ((), ("--dry-run",)):
        assert_bad_input(cli("advance", "--stage", "networking", "--all", *extra), "host bits")
    assert state_bytes(site) == before
    assert '"stage": "mounting"' in cli("nodes", "show", "SN1", "--json").stdout


# --- secrets files ---------------------------------------------------------------------------


def omapi_site(site: Site, key_file: Path) -> None:
    """Switch the site to the OMAPI backend with ``key_file`` (port 1: never contacted)."""
    text = site.config_path.read_text().replace('backend = "file"', 'backend = "omapi"')
    site.config_path.write_text(text)
    site.write_config(f'[dhcp.omapi]\nhost = "127.0.0.1"\nport = 1\nkey_file = "{key_file}"')


@pytest.mark.parametrize("kind", ["missing", "empty", "directory", "not base64"])
def test_omapi_key_file_problems(cli, site: Site, tmp_path: Path, kind: str) -> None:
    key = tmp_path / "omapi.key"
    if kind == "empty":
        key.write_text("\n")
    elif kind == "directory":
        key.mkdir()
    elif kind == "not base64":
        key.write_text("s3cr3t-not-b64!!\n")
    omapi_site(site, key)
    needle = {
        "missing": f"dhcp.omapi.key_file {key}: No such file",
        "empty": f"dhcp.omapi.key_file {key} is empty",
        "directory": f"dhcp.omapi.key_file {key}: Is a directory",
        "not base64": f"dhcp.omapi.key_file {key}: not base64",
    }[kind]
    mounted_node(cli, tmp_path)
    run = cli("advance", "--stage", "networking", "--all")
    assert_bad_input(run, needle)
    assert "s3cr3t" not in run.stderr + run.stdout
    assert '"stage": "mounting"' in cli("nodes", "show", "SN1", "--json").stdout


@pytest.mark.parametrize("kind", ["missing", "empty", "directory"])
def test_bmc_password_file_problems_fail_the_node_not_the_run(
    cli, site: Site, tmp_path: Path, kind: str
) -> None:
    """A password file is per node (layers): the batch runs, the node fails, exit 1."""
    pw = tmp_path / "bmc.pw"
    if kind == "empty":
        pw.write_text("\n")
    elif kind == "directory":
        pw.mkdir()
    text = site.config_path.read_text()
    text = text.replace('password_env = "BMPROV_BMC_PASSWORD"', f'password_file = "{pw}"')
    site.config_path.write_text(text)
    sheet = tmp_path / "s.csv"
    sheet.write_text(
        "serial,mac,bmc_address,bmc_type,notes\nSN1,52:54:00:00:00:01,127.0.0.1:1,ipmi,x\n"
    )
    cli("import", sheet)
    # A dry run reads no password (issue 9): it plans; the real run reads it and fails the
    # node at its BMC step, before anything is sent to 127.0.0.1:1.
    assert cli("power", "status", "--serial", "SN1", "--dry-run", "--json").exit_code == 0
    run = cli("power", "status", "--serial", "SN1", "--json")
    assert run.exit_code == 1
    reason = {"missing": "No such file", "empty": "the file is empty", "directory": "directory"}
    assert f"file {pw}" in run.stdout and reason[kind] in run.stdout
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


# --- site templates --------------------------------------------------------------------------


def test_missing_template_dir_is_refused(cli, site: Site, tmp_path: Path) -> None:
    text = site.config_path.read_text().replace("dirs = []", 'dirs = ["no-such-templates"]')
    site.config_path.write_text(text)
    run = cli("pxe", "render")
    assert_bad_input(run, str(site.config_path), "templates.dirs", "no-such-templates")
    assert not (site.dir / "tftpboot").exists()


@pytest.mark.parametrize("command", [("pxe", "render"), ("advance", "--stage", "networking")])
def test_template_syntax_error_stops_before_any_node(
    cli, site: Site, tmp_path: Path, command: tuple[str, ...]
) -> None:
    bad = tmp_path / "tpl" / "pxe_templates" / "grub" / "local.j2"
    bad.parent.mkdir(parents=True)
    bad.write_text("set default=0\n{% if %}\n")
    mounted_node(cli, tmp_path)
    text = site.config_path.read_text().replace("dirs = []", f'dirs = ["{tmp_path / "tpl"}"]')
    site.config_path.write_text(text)
    before = state_bytes(site)
    run = cli(*command, "--all") if command[0] == "advance" else cli(*command)
    assert_bad_input(run, f"template {bad} line 2")
    assert state_bytes(site) == before
    assert not (site.dir / "tftpboot").exists()


@pytest.mark.parametrize(("backend", "key"), [("dnsmasq", "hostsdir"), ("kea", "config")])
def test_backend_without_its_paths_moves_nothing(
    cli, site: Site, tmp_path: Path, backend: str, key: str
) -> None:
    mounted_node(cli, tmp_path)
    text = site.config_path.read_text().replace('backend = "file"', f'backend = "{backend}"')
    site.config_path.write_text(text)
    needle = f"{site.config_path}: dhcp.{backend}.{key} is required"
    assert_bad_input(cli("dhcp", "list"), needle)
    assert_bad_input(cli("advance", "--stage", "networking", "--all"), needle)
    assert '"stage": "mounting"' in cli("nodes", "show", "SN1", "--json").stdout


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("install", "root_password_hash", "'Plain-Root-Pw-1'"),
        ("bmc", "password", "['Plain-Root-Pw-1 is here']"),
        ("bmc", "password", "''"),
    ],
)
def test_wrong_secret_values_are_not_echoed(
    cli, site: Site, section: str, key: str, value: str
) -> None:
    site.config_path.write_text(set_key(site.config_path.read_text(), section, key, value))
    run = cli("nodes", "list")
    assert_bad_input(run, f"{section}.{key}: ", "(value not shown)")
    assert "Plain-Root" not in run.stderr


def test_config_with_a_byte_order_mark_is_read(cli, site: Site) -> None:
    site.config_path.write_bytes(b"\xef\xbb\xbf" + site.config_path.read_bytes())
    assert cli("nodes", "list", "--json").exit_code == 0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[boot.os.rocky9]\ntemplate = "nosuch"', "boot.os.rocky9: template 'nosuch' needs"),
        ('[boot.os.myos]\ntemplate = "nosuch"', "boot.os.myos: template 'nosuch' needs"),
    ],
)
def test_profile_template_missing_stops_before_any_node(
    cli, site: Site, tmp_path: Path, extra: str, needle: str
) -> None:
    mounted_node(cli, tmp_path)
    site.write_config(extra)
    before = state_bytes(site)
    assert_bad_input(cli("advance", "--stage", "networking", "--all"), needle)
    assert_bad_input(cli("pxe", "render"), needle)
    assert state_bytes(site) == before


def test_default_post_script_missing_stops_before_any_node(cli, site: Site, tmp_path: Path) -> None:
    mounted_node(cli, tmp_path)
    text = site.config_path.read_text().replace('# post_script = "example"', 'post_script = "gone"')
    site.config_path.write_text(text)
    assert_bad_input(cli("advance", "--stage", "networking", "--all"), "post/gone.sh")
    assert '"stage": "mounting"' in cli("nodes", "show", "SN1", "--json").stdout


def test_http_root_at_the_filesystem_root_renders(cli, site: Site) -> None:
    """Paths are joined as strings; "/" once gave "//ks/..." and a KeyError in ks validate."""
    text = site.config_path.read_text().replace('http_root = "http"', 'http_root = "/"')
    site.config_path.write_text(text)
    run = cli("ks", "validate", "--json")
    assert run.exit_code == 0, run.stderr


def test_tftp_root_that_is_a_file(cli, site: Site) -> None:
    (site.dir / "tftpboot").write_text("not a directory")
    run = cli("pxe", "render")
    assert run.exit_code == 1 and "Traceback" not in run.stderr
    assert f"{site.dir / 'tftpboot'} is a file, not a directory" in run.stderr
