#!/bin/sh
# /init of bmprov's installer stand-in (bmprov/lab/installer.py). Two roles, one image:
#  * booted over the network: DHCP on the boot NIC, fetch the node's install file from
#    ${bmprov.url}@INSTALL_PATH@<serial>?token=<bmprov.token> (bmprov serve), report
#    stages 1-4 (POST ${bmprov.url}/callback/<serial>, Authorization: Bearer <bmprov.token>,
#    form field stage=), "install" by writing a marker to the local disk, reboot;
#  * booted from the local disk (bmprov.disk=1): with a fresh marker, post stage 5 once (the
#    first-boot step) and stay up; without one, say the disk is empty and power off.
# bmprov.url defaults to the scheme://host:port of inst.ks= (before serve hands out
# bmprov.url); the serial is the machine's SMBIOS serial (QEMU -smbios type=1,serial=).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
log() { echo "[bmprov-standin $(cut -d' ' -f1 /proc/uptime)s] $*"; }
log "init started"
URL=; TOKEN=; KS=; BOOTIF=; FROMDISK=
for w in $(cat /proc/cmdline); do
  case "$w" in
    bmprov.url=*) URL=${w#bmprov.url=} ;;
    bmprov.token=*) TOKEN=${w#bmprov.token=} ;;
    bmprov.disk=*) FROMDISK=${w#bmprov.disk=} ;;
    inst.ks=*) KS=${w#inst.ks=} ;;
    BOOTIF=*) BOOTIF=${w#BOOTIF=} ;;
  esac
done
for m in $(cat /lib/modules/load.order); do insmod /lib/modules/$m.ko 2>/dev/null; done
SERIAL=$(cat /sys/class/dmi/id/product_serial 2>/dev/null)
DISK=/dev/vda
MARK_SKIP=@MARK_SKIP@   # 512-byte sectors: the marker lives past the boot partition
i=0; while [ ! -b $DISK ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
marker() { dd if=$DISK bs=512 skip=$MARK_SKIP count=1 2>/dev/null | tr -d '\000' | head -n 1; }
put_marker() { printf '%s\n' "$1" | dd of=$DISK bs=512 seek=$MARK_SKIP count=1 conv=sync 2>/dev/null; sync; }

net_up() {
  want=$(echo "${BOOTIF#01-}" | tr 'A-F-' 'a-f:')
  IF=; i=0
  while [ -z "$IF" ] && [ $i -lt 100 ]; do
    for d in /sys/class/net/*; do
      n=${d##*/}; [ "$n" = lo ] && continue
      if [ -z "$want" ] || [ "$(cat $d/address)" = "$want" ]; then IF=$n; break; fi
    done
    [ -n "$IF" ] || { i=$((i+1)); sleep 0.1; }
  done
  [ -n "$IF" ] || { log "FATAL: no NIC"; return 1; }
  ip link set lo up; ip link set "$IF" up
  i=0; while [ "$(cat /sys/class/net/$IF/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  udhcpc -i "$IF" -n -q -t 10 -T 1 -s /etc/udhcpc.script 2>&1 | sed 's/^/[udhcpc] /'
  [ -f /tmp/dhcp.env ] || { log "FATAL: no DHCP lease"; return 1; }
  . /tmp/dhcp.env
  log "$IF $(cat /sys/class/net/$IF/address) lease $DHCP_IP"
}

# busybox 1.35 static: 'wget -T' segfaults, so the timeout applet bounds each try
post() {
  for try in 1 2 3 4 5; do
    if [ -n "$TOKEN" ]; then
      timeout 10 wget -q -O /tmp/cb.out --header "Authorization: Bearer $TOKEN" \
        --post-data "stage=$1" "$URL/callback/$SERIAL" && { log "STAGE-$1-OK"; return 0; }
    else
      timeout 10 wget -q -O /tmp/cb.out --post-data "stage=$1" "$URL/callback/$SERIAL" \
        && { log "STAGE-$1-OK"; return 0; }
    fi
    log "stage $1: try $try failed"; sleep 1
  done
  return 1
}

if [ "$FROMDISK" = 1 ]; then
  M=$(marker)
  case "$M" in
    BMPROV-INSTALLED*) ;;
    *) log "LOCALDISK-EMPTY: no OS on the local disk"; poweroff -f; sleep 30 ;;
  esac
  log "LOCALDISK-BOOTED $(echo "$M" | sed 's/token=[^ ]*/token=*/')"  # never the token
  for w in $M; do
    case "$w" in url=*) URL=${w#url=} ;; token=*) TOKEN=${w#token=} ;; esac
  done
  case "$M" in
    *firstboot=pending*)
      net_up && post 5 && put_marker "$(echo "$M" | sed 's/firstboot=pending/firstboot=done/')"
      ;;
  esac
  log "SERVER-ONLINE $SERIAL"
  while :; do sleep 3600; done
fi

log "INSTALLER serial=$SERIAL"
[ -n "$URL" ] || URL="$(echo "$KS" | cut -d/ -f1-3)"
net_up || { poweroff -f; sleep 30; }
post 1 || { log "FATAL: no callback"; poweroff -f; sleep 30; }
if ! timeout 10 wget -q -O /tmp/install.cfg "$URL@INSTALL_PATH@$SERIAL?token=$TOKEN"; then
  log "INSTALL-FILE-MISSING $URL@INSTALL_PATH@$SERIAL"; post failed; poweroff -f; sleep 30
fi
log "INSTALL-FILE $(wc -c < /tmp/install.cfg) bytes"
put_marker "BMPROV-INSTALLED serial=$SERIAL url=$URL token=$TOKEN firstboot=pending"
post 2
post 3
post 4
log "INSTALL-DONE rebooting"
reboot -f
sleep 30
