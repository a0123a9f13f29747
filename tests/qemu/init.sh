#!/bin/sh
# /init of the bmprov test initrd: DHCP on the boot NIC, fetch the install file named by
# inst.ks=, call back over HTTP with the NIC's MAC, the lease and the kernel command line,
# then power off (QEMU exits 0). Callback: bmptest.cb=URL, else <inst.ks host>/callback.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
log() { echo "[bmptest-initrd $(cut -d' ' -f1 /proc/uptime)s] $*"; }
log "init started"
KS=; CB=; BOOTIF=
for w in $(cat /proc/cmdline); do
  case "$w" in
    inst.ks=*) KS=${w#inst.ks=} ;;
    bmptest.cb=*) CB=${w#bmptest.cb=} ;;
    BOOTIF=*) BOOTIF=${w#BOOTIF=} ;;
  esac
done
[ -n "$CB" ] || CB="$(echo "$KS" | cut -d/ -f1-3)/callback"
for m in $(cat /lib/modules/load.order); do insmod /lib/modules/$m.ko 2>/dev/null; done
# the boot NIC: the one BOOTIF names (pxelinux IPAPPEND 2 / bmprov's GRUB entry), else the first
want=$(echo "${BOOTIF#01-}" | tr 'A-F-' 'a-f:')
IF=; i=0
while [ -z "$IF" ] && [ $i -lt 100 ]; do
  for d in /sys/class/net/*; do
    n=${d##*/}; [ "$n" = lo ] && continue
    if [ -z "$want" ] || [ "$(cat $d/address)" = "$want" ]; then IF=$n; break; fi
  done
  [ -n "$IF" ] || { i=$((i+1)); sleep 0.1; }
done
[ -n "$IF" ] || { log "FATAL: no NIC"; poweroff -f; }
MAC=$(cat /sys/class/net/$IF/address)
ip link set lo up; ip link set "$IF" up
i=0; while [ "$(cat /sys/class/net/$IF/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
log "$IF $MAC link up"
udhcpc -i "$IF" -n -q -t 10 -T 1 -s /etc/udhcpc.script 2>&1 | sed 's/^/[udhcpc] /'
[ -f /tmp/dhcp.env ] || { log "FATAL: no DHCP lease"; poweroff -f; }
. /tmp/dhcp.env
log "lease $DHCP_IP"
KSBYTES=-1
[ -n "$KS" ] && timeout 10 wget -q -O /tmp/ks.cfg "$KS" && KSBYTES=$(wc -c < /tmp/ks.cfg)
# busybox 1.35 static: 'wget -T' segfaults, so the timeout applet bounds each try
CMD=$(base64 -w 0 /proc/cmdline | tr '+/' '-_')
URL="$CB?mac=$MAC&ip=$DHCP_IP&ks_bytes=$KSBYTES&cmdline=$CMD"
for try in 1 2 3 4 5 6 7 8 9 10; do
  timeout 10 wget -q -O /tmp/cb.out "$URL" && { log "CALLBACK-OK"; break; }
  log "callback try $try failed"; sleep 1
done
poweroff -f
sleep 30
