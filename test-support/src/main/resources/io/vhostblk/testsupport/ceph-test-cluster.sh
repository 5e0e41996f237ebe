#!/usr/bin/env bash
# Starts a throwaway single-node Ceph cluster (one mon, one mgr, one BlueStore OSD on a sparse
# file) in DIR, bound to 127.0.0.1, with cephx, no systemd; the daemons run in the foreground
# (backgrounded here) and write their PIDs to DIR/run/*.pid for the caller to stop.
# Usage: ceph-test-cluster.sh DIR PORT POOL
# Prints nothing on success; DIR/ceph.conf and DIR/client.admin.keyring are what clients use.
set -euo pipefail
dir=$1 port=$2 pool=$3
mkdir -p "$dir"/{run,log,mon,mgr,osd}
fsid=$(uuidgen)
conf=$dir/ceph.conf
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/client.admin.keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log to stderr = false
err to stderr = true
mon data = $dir/mon
mgr data = $dir/mgr
osd data = $dir/osd
osd objectstore = bluestore
bluestore block path = $dir/osd-block
bluestore block create = true
bluestore block size = 8589934592
bluestore fsck on mount = false
osd memory target = 536870912
osd op num shards = 1
osd op num threads per shard = 2
mgr disabled modules = dashboard prometheus restful
[mon.a]
keyring = $dir/mon/keyring
[mgr.x]
keyring = $dir/mgr/keyring
[osd.0]
keyring = $dir/osd/keyring
CONF
ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/client.admin.keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/client.admin.keyring" >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
ceph-mon -c "$conf" -i a -f > "$dir/log/mon.a.out" 2>&1 &
echo $! > "$dir/run/mon.a.pid"
t=(timeout 20)
until "${t[@]}" ceph -c "$conf" mon stat >/dev/null 2>&1; do sleep 0.5; done
"${t[@]}" ceph -c "$conf" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
  -o "$dir/mgr/keyring"
ceph-mgr -c "$conf" -i x -f > "$dir/log/mgr.x.out" 2>&1 &
echo $! > "$dir/run/mgr.x.pid"
uuid=$(uuidgen)
id=$("${t[@]}" ceph -c "$conf" osd new "$uuid")
ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" --mkkey --no-mon-config > "$dir/log/osd.mkfs.out" 2>&1
"${t[@]}" ceph -c "$conf" auth add "osd.$id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
  -i "$dir/osd/keyring" >/dev/null 2>&1
ceph-osd -c "$conf" -i "$id" -f > "$dir/log/osd.$id.out" 2>&1 &
echo $! > "$dir/run/osd.$id.pid"
"${t[@]}" ceph -c "$conf" osd pool create "$pool" 8 8 >/dev/null 2>&1
"${t[@]}" rbd -c "$conf" pool init "$pool"
# Ready when every placement group is active (the mgr reports PG states).
until "${t[@]}" ceph -c "$conf" pg stat 2>/dev/null | grep -Eq '^[0-9]+ pgs: [0-9]+ active\+clean;'; do
  sleep 0.5
done
