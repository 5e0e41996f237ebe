#!/bin/bash
# The cache benchmark of docs/benchmarks.md: a backing image slowed by --inject latency=500us, with and without
# the cache module, warm 4 KiB random reads (no cache vs write-through) and random writes (write-through vs
# write-back), each run a fresh server pinned to CPU 0 and the load generator to CPU 1, runs alternating.
# Usage: bench/cache.sh [QD] [CACHE_DIR]   (build first: ./mvnw -q -pl server,modules/cache -am package -DskipTests)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
qd=${1:-32}
cache_dir=${2:-/dev/shm}
d=$(mktemp -d /tmp/vhost-blk-cache-bench.XXXXXX)
jar=$root/server/target/vhost-blk.jar
java=$("$root/bin/find-jdk")/bin/java
cp "$root"/modules/cache/target/vhost-blk-module-cache-*.jar "$d/cache.jar"

run() { # NAME MODE(none|write-through|write-back) BENCH-ARGS...
  local name=$1 mode=$2; shift 2
  rm -f "$d/img" "$cache_dir/vhost-blk-bench-cache.bin" "$d/s.sock"
  truncate -s 256M "$d/img"
  local policy=()
  if [ "$mode" != none ]; then
    cat > "$d/p.policy" <<P
vm = bench
module-dir = $d
chain = cache
[module cache]
jar = cache.jar
sha256 = $(sha256sum "$d/cache.jar" | cut -d' ' -f1)
set.cache-file = $cache_dir/vhost-blk-bench-cache.bin
set.size = 128M
set.mode = $mode
P
    policy=(--policy "$d/p.policy")
  fi
  taskset -c 0 "$java" "@$root/packaging/jvm.options" -jar "$jar" serve --socket "$d/s.sock" --disk "$d/img" \
      --inject latency=500us "${policy[@]}" > "$d/server-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [ -S "$d/s.sock" ] && break; sleep 0.1; done
  if [ "$mode" != none ]; then # warm: the 64 MiB working set read once
    taskset -c 1 "$java" "@$root/packaging/jvm.options" -jar "$jar" bench --socket "$d/s.sock" --rw read --bs 128k \
        --iodepth 8 --size 64M --runtime 2s --ramp 0s > /dev/null 2>&1
  fi
  echo "== $name"
  taskset -c 1 "$java" "@$root/packaging/jvm.options" -jar "$jar" bench --socket "$d/s.sock" --size 64M --pid "$pid" "$@" \
      | grep -E "iops|cpu"
  kill "$pid"; wait "$pid" 2>/dev/null
}

for round in 1 2; do
  for m in none write-through; do run "randread-$m-$round" $m --rw randread --bs 4k --iodepth "$qd" --runtime 4s --ramp 1s; done
done
for round in 1 2; do
  for m in write-through write-back; do run "randwrite-$m-$round" $m --rw randwrite --bs 4k --iodepth "$qd" --runtime 4s --ramp 1s; done
done
rm -rf "$d" "$cache_dir/vhost-blk-bench-cache.bin"
