#!/usr/bin/env bash
# Measures dedup and compress against a plain image on the same file system: 4 KiB random writes of
# incompressible, 2:1 compressible and duplicate-heavy data (vhost-blk bench --data), and 4 KiB
# random reads of a span filled with duplicate-heavy data. Each configuration gets a fresh image;
# the back-end (vhost-blk serve, io_uring driver) and the generator are pinned to different CPUs,
# and configurations alternate within each round (--reps rounds). Prints one markdown row per job
# and round: IOPS, back-end CPU µs per I/O. Stops what it started by PID.
#
# Every job starts a fresh server JVM, so each job's ramp (not measured) must cover the JIT's warm-up: with
# both modules C2 spends 2-3 s of CPU on the back-end's pinned CPU in the first ~10 s, and a 1 s ramp let
# most of it into the measured window (issue 9's "second round costs twice the CPU", docs/benchmarks.md run G).
#
#   bench/reduce.sh [--dir DIR] [--reps 2] [--runtime 5s] [--ramp 15s] [--pin 0:1] [--configs "plain both"]
#                   [--worker auto|on|off] [--jar SERVER.jar] [--module-jar REDUCE.jar] [--label TEXT]
#
# --worker sets the modules' worker setting (left out: the module's default); --jar and --module-jar measure
# other builds (a before/after comparison); --label goes into the config column.
#
# Configurations: plain (no module), both (dedup, compress), dedup, compress.
# Needs: taskset, JDK 25 (bin/find-jdk), the server jar and the reduce module jar (built if missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/target/reduce-bench
reps=2
runtime=5s
ramp=15s
pin=0:1
configs="plain both dedup compress"
span=256M
worker=
jar=
module_jar=
label=
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --pin) pin=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --worker) worker=$2; shift 2 ;;
    --jar) jar=$2; shift 2 ;;
    --module-jar) module_jar=$2; shift 2 ;;
    --label) label=" $2"; shift 2 ;;
    *) echo "reduce.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
backend_cpus=${pin%%:*}
generator_cpus=${pin##*:}
java_home=$("$root/bin/find-jdk")
java=("$java_home/bin/java" "@$root/packaging/jvm.options")
if [ -z "$jar" ] && [ -z "$module_jar" ]; then
  jar=$root/server/target/vhost-blk.jar
  module_jar=$(ls "$root"/modules/reduce/target/vhost-blk-module-reduce-*.jar 2>/dev/null | grep -v -e sources -e javadoc -e original | head -1 || true)
fi
if [ ! -f "$jar" ] || [ -z "$module_jar" ]; then
  (cd "$root" && ./mvnw -q -B -DskipTests -pl server,modules/reduce -am package >&2)
  jar=$root/server/target/vhost-blk.jar
  module_jar=$(ls "$root"/modules/reduce/target/vhost-blk-module-reduce-*.jar | grep -v -e sources -e javadoc -e original | head -1)
fi
mkdir -p "$dir/modules"
cp "$module_jar" "$dir/modules/reduce.jar"
sha=$(sha256sum "$dir/modules/reduce.jar" | cut -d' ' -f1)
sock=$dir/vb.sock
pid=

stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  pid=
}
trap stop EXIT

policy() { # NAMES...
  local names=$1
  local text="vm = bench
module-dir = $dir/modules
chain = $names
"
  for m in ${names//,/ }; do
    text+="
[module $m]
jar = reduce.jar
sha256 = $sha
${worker:+set.worker = $worker
}"
  done
  printf '%s' "$text" > "$dir/policy"
}

start() { # CONFIG
  local img=$dir/disk.img args=()
  rm -f "$img" "$sock"
  case $1 in
    plain) truncate -s 1G "$img" ;;
    *) "${java[@]}" -jar "$jar" reduce format "$img" --logical-size 1G >/dev/null ;;
  esac
  case $1 in
    both) policy "dedup, compress"; args=(--policy "$dir/policy") ;;
    dedup|compress) policy "$1"; args=(--policy "$dir/policy") ;;
  esac
  taskset -c "$backend_cpus" "${java[@]}" -jar "$jar" serve --socket "$sock" --disk "$img" --driver io_uring \
      --queues 1 "${args[@]}" > "$dir/serve-$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [ -S "$sock" ] && return 0
    sleep 0.1
  done
  echo "reduce.sh: the server did not start; see $dir/serve-$1.log" >&2
  exit 1
}

bench() { # ARGS...: prints "IOPS cpu_us_per_io errors"
  taskset -c "$generator_cpus" "${java[@]}" -jar "$jar" bench --socket "$sock" --pid "$pid" --json "$@" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%d %.1f %d" % (r["iops"], r.get("backend_cpu_us_per_io", -1), r["errors"]))'
}

echo "| round | config | job | IOPS | back-end CPU µs/IO | errors |"
echo "| --- | --- | --- | ---: | ---: | ---: |"
for round in $(seq "$reps"); do
  for config in $configs; do
    for data in random compressible duplicate; do
      start "$config"
      read -r iops cpu errors < <(bench --rw randwrite --bs 4k --iodepth 32 --size "$span" --runtime "$runtime" --ramp "$ramp" --data "$data")
      echo "| $round | $config$label | randwrite 4k QD32 $data | $iops | $cpu | $errors |"
      stop
    done
    start "$config"
    # Fill the span (sequential writes wrap around it for the whole runtime).
    read -r _ _ errors < <(bench --rw write --bs 128k --iodepth 8 --size 64M --runtime 4s --ramp 0s --data duplicate)
    read -r iops cpu rerrors < <(bench --rw randread --bs 4k --iodepth 32 --size 64M --runtime "$runtime" --ramp "$ramp")
    echo "| $round | $config$label | randread 4k QD32 of duplicate data | $iops | $cpu | $((errors + rerrors)) |"
    stop
  done
done
