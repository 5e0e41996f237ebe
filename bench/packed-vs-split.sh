#!/usr/bin/env bash
# Split against packed virtqueues on one vhost-blk server: for each backing (null, file), the
# server runs on --backend-cpus and `vhost-blk bench` on --generator-cpus; each job runs on a
# split ring, then on a packed ring (--packed), --reps rounds alternately. Prints one line per
# run: backing, job, ring, IOPS, p50/p99 latency (us), back-end CPU us per I/O.
# Stops what it started by PID (trap). Usage:
#   bench/packed-vs-split.sh [--reps N] [--runtime 5s] [--pin B:G] [--image PATH] [--jar PATH]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=2 runtime=5s backend_cpus=0 generator_cpus=1 image=/tmp/vhost-blk-rings.img
jar=${VHOST_BLK_JAR:-$root/server/target/vhost-blk.jar}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --pin) backend_cpus=${2%%:*}; generator_cpus=${2##*:}; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --jar) jar=$2; shift 2 ;;
    *) echo "packed-vs-split.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
java=("$("$root/bin/find-jdk")/bin/java" "@$root/packaging/jvm.options")
work=$(mktemp -d /tmp/vb-rings-XXXXXX)
sock=$work/blk.sock
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
if [ ! -f "$image" ]; then
  head -c $((1 << 30)) /dev/urandom > "$image" # random data: reads reach the disk, not zero pages
fi
start_server() { # args: serve options
  rm -f "$sock"
  taskset -c "$backend_cpus" "${java[@]}" -jar "$jar" serve --socket "$sock" --queues 1 "$@" > "$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do [ -S "$sock" ] && return 0; sleep 0.1; done
  echo "server did not listen; log:" >&2; cat "$work/serve.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" || true; pid=; }
run_jobs() { # backing
  for job in "randread 4k 1" "randread 4k 32"; do
    set -- $job
    for round in $(seq "$reps"); do
      for ring in split packed; do
        extra=(); [ "$ring" = packed ] && extra=(--packed)
        out=$(taskset -c "$generator_cpus" "${java[@]}" -jar "$jar" bench --socket "$sock" --rw "$1" --bs "$2" \
          --iodepth "$3" --queues 1 --runtime "$runtime" --ramp 1s --pid "$pid" --json "${extra[@]}")
        echo "$backing $1 $2 QD$3 round $round $ring: $(echo "$out" | python3 -c '
import json,sys; r=json.load(sys.stdin)
print("%.0f IOPS, p50 %.1f us, p99 %.1f us, backend %.2f us/IO, bench alloc %s B/IO, errors %d" % (r["iops"],
      r["lat_p50_us"], r["lat_p99_us"], r["backend_cpu_us_per_io"], r["generator_alloc_bytes_per_io"], r["errors"]))')"
      done
    done
  done
}
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); server CPUs $backend_cpus, bench CPUs $generator_cpus"
backing=null; start_server --driver null --size 1073741824; run_jobs; stop_server
backing=file; start_server --disk "$image" --driver io_uring; run_jobs; stop_server
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
