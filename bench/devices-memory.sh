#!/usr/bin/env bash
# Resident memory, threads and start-up time of one vhost-blk process serving N devices.
#
#   bench/devices-memory.sh [--counts "1 8 32"] [--load] [--settle SECS] [--work DIR]
#
# For each count: writes a host configuration with N devices (sparse 64M images), starts
# bin/vhost-blk serve --config (the launcher's JVM options), measures the time until the last
# socket listens, waits SECS (default 10: past the JIT's start-up compiles and the native heap
# trimmer's first pass), and prints VmRSS, the anonymous PSS and the thread count. With
# --load, 'vhost-blk bench' then drives the first device (4k randrw QD8, 5 s) and the figures
# are taken again while it runs. Stops what it started by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
counts="1 8 32"
load=0
settle=10
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --counts) counts=$2; shift 2 ;;
    --load) load=1; shift ;;
    --settle) settle=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "devices-memory.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$work" ] || work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
"$root/bin/vhost-blk" help >/dev/null 2>&1 || true   # builds the jar when needed
figures() { # pid
  printf 'rss=%s kB pss_anon=%s kB threads=%s' "$(awk '/VmRSS/ {print $2}' /proc/"$1"/status)" \
    "$(awk '/Pss_Anon/ {print $2}' /proc/"$1"/smaps_rollup)" "$(ls /proc/"$1"/task | wc -l)"
}
echo "| devices | start-up to last socket | idle | under load (device 1) |"
echo "| ---: | ---: | --- | --- |"
for n in $counts; do
  dir="$work/n$n"
  rm -rf "$dir"; mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    printf '[device d%d]\nsocket = d%d.sock\ndisk = d%d.img\nsize = 64M\n' "$i" "$i" "$i" >> "$dir/host.conf"
  done
  t0=$(date +%s%N)
  "$root/bin/vhost-blk" serve --config "$dir/host.conf" >"$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do [ -S "$dir/d$n.sock" ] && break; sleep 0.01; done
  [ -S "$dir/d$n.sock" ] || { echo "serve did not listen; log: $dir/serve.log" >&2; exit 1; }
  t1=$(date +%s%N)
  sleep "$settle"
  idle=$(figures "$pid")
  loaded="-"
  if [ "$load" = 1 ]; then
    "$root/bin/vhost-blk" bench --socket "$dir/d1.sock" --rw randrw --bs 4k --iodepth 8 --size 64M --runtime 5s >"$dir/bench.log" 2>&1 &
    bpid=$!
    sleep 3
    loaded=$(figures "$pid")
    wait "$bpid"
  fi
  echo "| $n | $(( (t1 - t0) / 1000000 )) ms | $idle | $loaded |"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
done
