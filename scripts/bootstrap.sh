#!/usr/bin/env bash
# Install everything bmprov and its test suite need on a fresh Debian 12 machine (run as root).
#   scripts/bootstrap.sh          apt peers + .venv with bmprov and its dev/test dependencies
# Idempotent: a second run installs nothing new (~6 s). Each step prints what it does and how far
# it got, and a long step says so every 15 s (a first pip install took 50-90 s here). Services
# from the packages are never started (a temporary policy-rc.d denies them) and never left
# enabled at boot (scripts/quiet_services.sh), so no DHCP/TFTP daemon ever binds a real
# interface, now or after a reboot.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv iproute2 curl
  isc-dhcp-server isc-dhcp-client dnsmasq-base kea-dhcp4-server
  tftpd-hpa tftp-hpa busybox
  openipmi ipmitool
  # tests/bench: a real PostgreSQL for the shared state, run by the fixtures (initdb/pg_ctl);
  # postgresql-common ships the postgresql service, which quiet_services.sh disables at boot
  postgresql postgresql-common
  grub-common  # grub-script-check: the GRUB entries bmprov writes are syntax-checked by GRUB itself
  debconf  # debconf-set-selections --checkonly: ks validate and the tests check every preseed
  # tests/test_pxe_boot_qemu.py: a QEMU machine PXE-boots from bmprov's files (BIOS and UEFI)
  qemu-system-x86 ipxe-qemu seabios pxelinux syslinux-common ovmf grub-efi-amd64-bin kmod file
  # bmprov lab: the installer stand-in's ISO (xorriso) and each machine's local disk, a FAT
  # partition made on the image file (dosfstools, mtools) and booted by syslinux on BIOS
  xorriso syslinux mtools dosfstools
)
step() { printf 'bootstrap [%s/4] %s\n' "$1" "$2" >&2; }
# A long step is announced, then says so every 10 s while it prints nothing of its own (pip
# installing ~70 packages was silent for 32 s, creating the .venv for 18 s), so the set-up
# never looks hung.
ticker() {
  local t0=$SECONDS
  while sleep 10; do echo "bootstrap       … still $1 ($((SECONDS - t0)) s)" >&2; done
}
tick_start() {
  echo "bootstrap       $1" >&2
  ticker "$1" &
  TICKER=$!
}
TICKER=""
tick_stop() {
  [ -n "$TICKER" ] || return 0
  kill "$TICKER" 2>/dev/null || true
  wait "$TICKER" 2>/dev/null || true
  TICKER=""
}
trap tick_stop EXIT # a failed step must not leave the ticker printing

# apt's and pip's own lines, numbered, as they come. Plain `read` loops: Debian's awk (mawk)
# reads a pipe in blocks and held pip's lines back for 40 s.
apt_lines() {
  local line total="?" n=0 s=0 f
  while IFS= read -r line; do
    read -r -a f <<<"$line"
    case "$line" in
      *" newly installed"*) total=${f[2]}; echo "bootstrap       apt: $line" ;;
      Get:*) n=$((n + 1)); echo "bootstrap       download $n/$total: ${f[4]-} ${f[6]-}" ;;
      "Setting up "*) s=$((s + 1)); echo "bootstrap       set up $s/$total: ${f[2]-}" ;;
    esac
  done
}
pip_lines() {
  local line n=0 r=0 f
  while IFS= read -r line; do
    read -r -a f <<<"$line"
    case "$line" in
      Collecting* | Processing*) n=$((n + 1)); echo "bootstrap       pip $n: ${f[1]##*/}" ;;
      "Requirement already satisfied"*) r=$((r + 1)) ;;
      "Installing collected packages"*)
        echo "bootstrap       pip: installing $((${#f[@]} - 3)) package(s) (the longest step)" ;;
      "Successfully installed"*) echo "bootstrap       pip: installed $((${#f[@]} - 2)) package(s)" ;;
    esac
  done
  [ "$r" = 0 ] || echo "bootstrap       pip: $r requirement(s) already installed"
}

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
  tick_start "apt: updating the package lists"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  tick_stop
  tick_start "apt: installing"
  # One line per package fetched and set up (apt's own, numbered), instead of a silent minute.
  apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Progress-Fancy=0 install -y -q --no-install-recommends "${missing[@]}" |
    apt_lines >&2
  tick_stop
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

step 2 "services of these packages: not started, not enabled at boot"
bash scripts/quiet_services.sh --just-installed "${missing[@]}" -- "${APT_PACKAGES[@]}"

PY=${PYTHON:-python3}
step 3 ".venv: bmprov and its dependencies (pip)"
if [ ! -x .venv/bin/python ]; then
  tick_start "creating .venv (python3 -m venv)"
  "$PY" -m venv .venv
  tick_stop
fi
tick_start "pip: upgrading pip itself"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
tick_stop
tick_start "pip: resolving and installing"
PYTHONUNBUFFERED=1 .venv/bin/python -m pip install --progress-bar off -e ".[dev]" | pip_lines >&2
tick_stop
.venv/bin/bmprov --version >/dev/null

step 4 "bmprov on PATH"
bin="$PWD/.venv/bin/bmprov" link=/usr/local/bin/bmprov
if [ -w /usr/local/bin ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
  ln -sfn "$bin" "$link"
  echo "bootstrap: ready: $link -> $bin" >&2
else
  echo "bootstrap: ready; to call bmprov by name: export PATH=\"$PWD/.venv/bin:\$PATH\"" >&2
fi
