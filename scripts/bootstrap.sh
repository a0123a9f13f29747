#!/usr/bin/env bash
# Install everything bmprov and its test suite need on a fresh Debian 12 machine (run as root).
#   scripts/bootstrap.sh          apt peers + .venv with bmprov and its dev/test dependencies
# Idempotent: a second run installs nothing new. Services from the packages are never started
# (a temporary policy-rc.d denies them), so no DHCP/TFTP daemon ever binds a real interface.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv iproute2 curl
  isc-dhcp-server isc-dhcp-client dnsmasq-base kea-dhcp4-server
  tftpd-hpa tftp-hpa busybox
  openipmi ipmitool
  grub-common  # grub-script-check: the GRUB entries bmprov writes are syntax-checked by GRUB itself
  debconf  # debconf-set-selections --checkonly: ks validate and the tests check every preseed
  # tests/test_pxe_boot_qemu.py: a QEMU machine PXE-boots from bmprov's files (BIOS and UEFI)
  qemu-system-x86 ipxe-qemu seabios pxelinux syslinux-common ovmf grub-efi-amd64-bin kmod file
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing apt packages: ${missing[*]}" >&2
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"
echo "bootstrap: ready (.venv/bin/bmprov)" >&2
