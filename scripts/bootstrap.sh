#!/usr/bin/env bash
# Install everything bmprov and its test suite need on a fresh Debian 12 machine (run as root).
#   scripts/bootstrap.sh          apt peers + .venv with bmprov and its dev/test dependencies
# Idempotent: a second run installs nothing new. Each step prints what it does and how far it got
# (a first run takes ~90 s of apt and pip). Services from the packages are never started (a
# temporary policy-rc.d denies them) and never left enabled at boot (scripts/quiet_services.sh),
# so no DHCP/TFTP daemon ever binds a real interface, now or after a reboot.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv iproute2 curl
  isc-dhcp-server isc-dhcp-client dnsmasq-base kea-dhcp4-server
  tftpd-hpa tftp-hpa busybox
  openipmi ipmitool
  grub-common  # grub-script-check: the GRUB entries bmprov writes are syntax-checked by GRUB itself
  # tests/test_pxe_boot_qemu.py: a QEMU machine PXE-boots from bmprov's files (BIOS and UEFI)
  qemu-system-x86 ipxe-qemu seabios pxelinux syslinux-common ovmf grub-efi-amd64-bin kmod file
)
step() { printf 'bootstrap [%s/4] %s\n' "$1" "$2" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
step 1 "apt: ${#APT_PACKAGES[@]} packages wanted, ${#missing[@]} to install${missing[*]:+: ${missing[*]}}"
if [ ${#missing[@]} -gt 0 ]; then
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # One line per package fetched and set up (apt's own, numbered), instead of a silent minute.
  apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Progress-Fancy=0 install -y -q --no-install-recommends "${missing[@]}" |
    awk '/^Get:/ { n++; printf "bootstrap       download %d: %s %s\n", n, $5, $7; fflush() }
         /^Setting up / { s++; printf "bootstrap       set up %d: %s\n", s, $3; fflush() }' >&2
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

step 2 "services of these packages: not started, not enabled at boot"
bash scripts/quiet_services.sh --just-installed "${missing[@]}" -- "${APT_PACKAGES[@]}"

PY=${PYTHON:-python3}
step 3 ".venv: bmprov and its dependencies (pip)"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# pip's own "Collecting"/"Installing" lines show how far it got; its download bars do not log well.
.venv/bin/python -m pip install --progress-bar off -e ".[dev]" |
  awk '/^Collecting / { n++; printf "bootstrap       pip %d: %s\n", n, $2; fflush() }
       /^Requirement already satisfied/ { r++ }
       /^(Installing collected|Successfully installed)/ { print "bootstrap       pip: " substr($0, 1, 120); fflush() }
       END { if (r) printf "bootstrap       pip: %d requirement(s) already installed\n", r }' >&2
.venv/bin/bmprov --version >/dev/null

step 4 "bmprov on PATH"
bin="$PWD/.venv/bin/bmprov" link=/usr/local/bin/bmprov
if [ -w /usr/local/bin ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
  ln -sfn "$bin" "$link"
  echo "bootstrap: ready: $link -> $bin" >&2
else
  echo "bootstrap: ready; to call bmprov by name: export PATH=\"$PWD/.venv/bin:\$PATH\"" >&2
fi
