#!/usr/bin/env bash
# Resident memory, threads and start-up time of one vhost-blk process serving N devices.
#
#   bench/devices-memory.sh [--counts "1 8 32"] [--load] [--settle SECS] [--work DIR]
#
# For each count: writes a host configuration with N devices (sparse 64M images), starts
# bin/vhost-blk serve --config (the launchers' JVM options and AOT cache; VHOST_BLK_JAVA_OPTS adds
# options, e.g. -XX:AOTMode=off to start without the cache), measures the time until the last socket
# listens (wall time, and the CPU time the process used until then), waits SECS (default 10: past
# the JIT's start-up compiles and the native heap trimmer's first pass), and prints VmRSS with its file-backed part (RssFile: libjvm.so, the CDS archive or AOT cache,
# pages other processes may share), the proportional set size (PSS: shared pages divided among the
# processes that map them), the anonymous memory (the process's own) and the thread count. With
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
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "devices-memory.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$work" ] || work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
"$root/bin/vhost-blk" help >/dev/null 2>&1 || true   # builds the jar when needed
figures() { # pid: RSS (file-backed) / PSS / anonymous, in MB, and threads
  local mb='{printf "%.1f", $2 / 1024}'
  printf '%s (%s) / %s / %s MB, %s threads' "$(awk "/^VmRSS/ $mb" /proc/"$1"/status)" \
    "$(awk "/^RssFile/ $mb" /proc/"$1"/status)" "$(awk "/^Pss:/ $mb" /proc/"$1"/smaps_rollup)" \
    "$(awk "/^Anonymous/ $mb" /proc/"$1"/smaps_rollup)" "$(ls /proc/"$1"/task | wc -l)"
}
echo "| devices | start-up to last socket | idle: RSS (file) / PSS / anonymous | under load (device 1) |"
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
  # CPU time the process used until then (user + system): unlike the wall time, it does not grow with
  # other processes' load on the machine.
  cpu_ms=$(awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' /proc/"$pid"/stat)
  sleep "$settle"
  idle=$(figures "$pid")
  loaded="-"
  if [ "$load" = 1 ]; then
    "$root/bin/vhost-blk" bench --socket "$dir/d1.sock" --rw randrw --bs 4k --iodepth 8 --size 64M --runtime 5s >"$dir/bench.log" 2>&1 &
    bpid=$!
    # Measure once the bench's queue runs (the server gains its queue thread), not at a fixed time: on
    # a loaded machine the bench's own JVM may take seconds to start.
    idle_threads=$(ls /proc/"$pid"/task | wc -l)
    for _ in $(seq 1 300); do
      [ "$(ls /proc/"$pid"/task | wc -l)" -gt "$idle_threads" ] || ! kill -0 "$bpid" 2>/dev/null && break
      sleep 0.1
    done
    sleep 2
    loaded=$(figures "$pid")
    wait "$bpid"
  fi
  echo "| $n | $(( (t1 - t0) / 1000000 )) ms ($cpu_ms ms CPU) | $idle | $loaded |"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
done
