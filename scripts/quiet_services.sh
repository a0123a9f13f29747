#!/usr/bin/env bash
# Disable at boot the services that the set-up's apt packages bring (isc-dhcp-server,
# kea-dhcp4-server, tftpd-hpa, openipmi...): bmprov's tests run these daemons themselves inside
# network namespaces, and a DHCP or TFTP server enabled at boot would answer on the operator's
# real network after the next reboot (Debian enables them on install: kea-dhcp4-server in
# multi-user.target.wants, S01 links in rc2-5.d for the SysV ones).
#   scripts/quiet_services.sh [--just-installed PKG...] -- PKG...
# Nothing is started or stopped. `update-rc.d NAME disable` turns the rc2-5.d S links into K
# links and runs `systemctl --root=/ disable`, which edits the unit links offline, so it works
# with systemd as PID 1 and without it (containers, chroots).
# A service is left enabled, with a note, when the operator configured it: its package's
# configuration files differ from what dpkg installed (a dhcpd.conf with subnets, say) and this
# run did not install the package, or it is named in BMPROV_KEEP_SERVICES (space-separated).
set -euo pipefail

just_installed=" "
if [ "${1:-}" = "--just-installed" ]; then
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do just_installed+="$1 "; shift; done
fi
[ "${1:-}" = "--" ] && shift
keep=" ${BMPROV_KEEP_SERVICES:-} "

# Services a package ships: its SysV init scripts and systemd units.
services_of() {
  dpkg-query -L "$1" 2>/dev/null |
    sed -nE 's#^/etc/init\.d/([^/]+)$#\1#p; s#^(/usr)?/lib/systemd/system/([^/@]+)\.service$#\2#p' |
    sort -u
}

# Enabled at boot: a S link in rc2-5.d or a unit link in some *.wants directory.
is_enabled() {
  compgen -G "/etc/rc[2-5].d/S??$1" >/dev/null || compgen -G "/etc/systemd/system/*.wants/$1.service" >/dev/null
}

# The package's conffiles (other than init scripts) as dpkg installed them.
config_untouched() {
  local file sum rest
  while read -r file sum rest; do
    [ -n "$file" ] && [ "$sum" != newconffile ] || continue
    case "$file" in /etc/init.d/* | /etc/init/*) continue ;; esac
    [ -f "$file" ] || continue
    [ "$(md5sum <"$file" | cut -c1-32)" = "$sum" ] || return 1
  done < <(dpkg-query -W -f='${Conffiles}\n' "$1" 2>/dev/null)
  return 0
}

disabled=0 kept=0
for pkg in "$@"; do
  for svc in $(services_of "$pkg"); do
    is_enabled "$svc" || continue
    if [[ $keep == *" $svc "* ]]; then
      echo "bootstrap: $svc stays enabled at boot (BMPROV_KEEP_SERVICES)" >&2
      kept=$((kept + 1)) && continue
    fi
    if [[ $just_installed != *" $pkg "* ]] && ! config_untouched "$pkg"; then
      echo "bootstrap: $svc is enabled at boot and $pkg's configuration was edited: left as it is" \
        "(disable it with: update-rc.d $svc disable)" >&2
      kept=$((kept + 1)) && continue
    fi
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
    # Native units that update-rc.d did not reach (no init script of that name).
    if compgen -G "/etc/systemd/system/*.wants/$svc.service" >/dev/null && command -v systemctl >/dev/null; then
      SYSTEMCTL_SKIP_SYSV=1 systemctl --root=/ --quiet disable "$svc.service" >/dev/null 2>&1 || true
    fi
    if is_enabled "$svc"; then
      echo "bootstrap: could not disable $svc at boot; run: update-rc.d $svc disable" >&2
      exit 1
    fi
    echo "bootstrap: disabled $svc at boot (from $pkg; bmprov never needs it running)" >&2
    disabled=$((disabled + 1))
  done
done
echo "bootstrap: services at boot: $disabled disabled, $kept kept" >&2
