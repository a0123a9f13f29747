"""The set-up never leaves a DHCP or TFTP server enabled at boot (scripts/quiet_services.sh).

Each test runs the real script, update-rc.d and systemctl against the machine's real packages,
in a private mount namespace where /etc is an overlay: the services are enabled there first (as
Debian's install does), and the machine's own /etc is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("isc-dhcp-server", "kea-dhcp4-server", "tftpd-hpa")
SERVICES = PACKAGES  # each ships one service of its own name

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespace)"),
    pytest.mark.skipif(
        not all(Path("/etc/init.d", s).exists() for s in SERVICES) or not shutil.which("unshare"),
        reason="the DHCP/TFTP server packages are not installed (scripts/bootstrap.sh)",
    ),
]

ENABLE_ALL = " && ".join(f"update-rc.d {s} enable >/dev/null 2>&1" for s in SERVICES)
# What the before-stop check looks at: S links in rc2-5.d and unit links in *.wants.
ENABLED = (
    "for s in " + " ".join(SERVICES) + "; do "
    'if compgen -G "/etc/rc[2-5].d/S??$s" >/dev/null || '
    'compgen -G "/etc/systemd/system/*.wants/$s.service" >/dev/null; '
    'then echo "enabled $s"; fi; done'
)


def in_overlay(tmp_path: Path, script: str, env: dict[str, str] | None = None) -> str:
    """Run ``script`` with an overlay over /etc in a private mount namespace; its output."""
    for d in ("upper", "work"):
        (tmp_path / d).mkdir(exist_ok=True)
    mount = (
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/upper,"
        f"workdir={tmp_path}/work /etc"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-ec", f"{mount}\n{script}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # in order: the script's notes between the listings
        text=True,
        check=False,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def test_enabled_services_of_the_setup_packages_are_disabled(tmp_path: Path) -> None:
    out = in_overlay(
        tmp_path,
        f"{ENABLE_ALL}\n{ENABLED}\necho ---\n"
        f"bash scripts/quiet_services.sh -- {' '.join(PACKAGES)} dnsmasq-base busybox\n"
        f"{ENABLED}\nls /etc/rc2.d",
    )
    before, after = out.split("---", 1)
    assert sorted(before.split()) == sorted(w for s in SERVICES for w in ("enabled", s))
    assert "enabled " not in after, after
    for s in SERVICES:
        assert f"disabled {s} at boot" in after
        assert f"K01{s}" in after  # the SysV links remain, as stop links
    assert "3 disabled, 0 kept" in after
    # The real machine's /etc is as it was (only the overlay changed).
    assert not list(tmp_path.glob("upper/init.d/*"))


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    out = in_overlay(
        tmp_path,
        f"{ENABLE_ALL}\nbash scripts/quiet_services.sh -- {' '.join(PACKAGES)}\n"
        f"echo ---\nbash scripts/quiet_services.sh -- {' '.join(PACKAGES)}",
    )
    assert "0 disabled, 0 kept" in out.split("---", 1)[1]


def test_a_service_the_operator_configured_is_kept_unless_just_installed(tmp_path: Path) -> None:
    # A dhcpd.conf with the operator's own subnet: that dhcpd was enabled on purpose.
    edit = "echo 'subnet 192.0.2.0 netmask 255.255.255.0 {}' >> /etc/dhcp/dhcpd.conf"
    out = in_overlay(
        tmp_path,
        f"{ENABLE_ALL}\n{edit}\nbash scripts/quiet_services.sh -- isc-dhcp-server\n{ENABLED}\n"
        "echo ---\nbash scripts/quiet_services.sh --just-installed isc-dhcp-server "
        f"-- isc-dhcp-server\n{ENABLED}",
    )
    kept, fresh = out.split("---", 1)
    assert "enabled isc-dhcp-server" in kept
    assert "configuration was edited: left as it is" in kept
    assert "enabled isc-dhcp-server" not in fresh  # installed by this run: ours to disable


def test_keep_services_opt_out(tmp_path: Path) -> None:
    out = in_overlay(
        tmp_path,
        f"{ENABLE_ALL}\nbash scripts/quiet_services.sh -- {' '.join(PACKAGES)}\n{ENABLED}",
        env={"BMPROV_KEEP_SERVICES": "tftpd-hpa"},
    )
    assert "enabled tftpd-hpa" in out
    assert "enabled isc-dhcp-server" not in out
    assert "2 disabled, 1 kept" in out
