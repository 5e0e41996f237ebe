#!/usr/bin/env bash
# Compares vhost-blk with qemu-storage-daemon on one machine in one run: the same backing, the
# same jobs, the same load generator (vhost-blk bench, which plays QEMU's front-end part), one
# back-end alive at a time. Prints a markdown table (and keeps every JSON report).
#
#   bench/compare.sh [--runtime 5s] [--ramp 1s] [--file-size 1G] [--no-file] [--no-null]
#                    [--qsd-aio io_uring|native] [--work DIR] [--jobs "NAME:ARGS;..."]
#                    [--rbd CONF:POOL/IMAGE] [--pin BACKEND_CPU:GENERATOR_CPU]
#
# Backings: "null" (qsd null-co,read-zeroes=off vs vhost-blk --driver null) and "file" (a fully
# written image opened with O_DIRECT: qsd cache.direct=on,aio=io_uring (or --qsd-aio native) vs vhost-blk
# --driver io_uring). With --rbd, also "rbd": an existing Ceph RBD image (qsd driver=rbd vs vhost-blk
# --driver rbd; the client is client.admin with the keyring CONF names). Both back-ends export 2 queues; each job drives 1 or 2 of them.
# qemu-storage-daemon runs its export in an iothread, as QEMU users normally configure it.
# Needs: qemu-storage-daemon, JDK 25 (bin/find-jdk), the server jar (built when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

runtime=5s
ramp=1s
file_size=1G
qsd_aio=io_uring
do_null=1
do_file=1
rbd=""
pin=""
work=""
jobs="randread-4k-qd1:--rw randread --bs 4k --iodepth 1;randread-4k-qd32:--rw randread --bs 4k --iodepth 32;randwrite-4k-qd32:--rw randwrite --bs 4k --iodepth 32;read-128k-qd8:--rw read --bs 128k --iodepth 8"
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --file-size) file_size=$2; shift 2 ;;
    --qsd-aio) qsd_aio=$2; shift 2 ;;
    --no-file) do_file=0; shift ;;
    --no-null) do_null=0; shift ;;
    --rbd) rbd=$2; shift 2 ;;
    --pin) pin=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

java_home=$("$root/bin/find-jdk")
java="$java_home/bin/java --enable-native-access=ALL-UNNAMED"
# --pin: the back-ends on one CPU, the load generator on another (taskset).
pin_backend=() pin_generator=()
if [ -n "$pin" ]; then
  pin_backend=(taskset -c "${pin%%:*}") pin_generator=(taskset -c "${pin#*:}")
fi
jar=${VHOST_BLK_JAR:-$root/server/target/vhost-blk.jar}
if [ ! -f "$jar" ]; then
  echo "compare.sh: building $jar" >&2
  (cd "$root" && ./mvnw -q -B -DskipTests -pl server -am package >&2)
fi
qsd=$(command -v qemu-storage-daemon || true)
[ -n "$qsd" ] || { echo "compare.sh: qemu-storage-daemon not found (apt-get install qemu-system-x86)" >&2; exit 1; }

auto_work=0
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/vbcmp.XXXXXX)
  auto_work=1
fi
mkdir -p "$work"
results="$work/results.jsonl"
: > "$results"
backend_pid=""

stop_backend() {
  if [ -n "$backend_pid" ]; then
    kill "$backend_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$backend_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$backend_pid" 2>/dev/null || true
    wait "$backend_pid" 2>/dev/null || true
    backend_pid=""
  fi
}
cleanup() {
  stop_backend
  # A work directory we made keeps the reports and logs but not the image.
  if [ "$auto_work" = 1 ]; then rm -f "$work/disk.img"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_backend NAME LOG COMMAND...: runs it in the background, waits for its socket.
start_backend() {
  local name=$1 log=$2 sock=$3
  shift 3
  rm -f "$sock"
  "${pin_backend[@]}" "$@" > "$log" 2>&1 &
  backend_pid=$!
  for _ in $(seq 1 200); do
    [ -S "$sock" ] && return 0
    kill -0 "$backend_pid" 2>/dev/null || { echo "compare.sh: $name exited early; log:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "compare.sh: $name did not create $sock in 20 s" >&2
  exit 1
}

# run_jobs BACKEND BACKING SOCKET: every job on 1 and 2 queues; one JSON line each, tagged.
run_jobs() {
  local backend=$1 backing=$2 sock=$3
  local IFS_SAVE=$IFS
  IFS=';'
  for job in $jobs; do
    IFS=$IFS_SAVE
    local name=${job%%:*} args=${job#*:}
    for q in 1 2; do
      echo "  $backend $backing $name queues=$q" >&2
      # shellcheck disable=SC2086
      out=$("${pin_generator[@]}" $java -jar "$jar" bench --socket "$sock" $args --queues "$q" --runtime "$runtime" --ramp "$ramp" \
        --pid "$backend_pid" --json) || { echo "compare.sh: bench failed: $out" >&2; exit 1; }
      echo "{\"backend\":\"$backend\",\"backing\":\"$backing\",\"job\":\"$name\",${out#\{}" >> "$results"
    done
    IFS=';'
  done
  IFS=$IFS_SAVE
}

sock="$work/blk.sock"
if [ "$do_null" = 1 ]; then
  size=$((8 << 30))
  start_backend qsd "$work/qsd-null.log" "$sock" "$qsd" \
    --blockdev "driver=null-co,node-name=n0,size=$size,read-zeroes=off" --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$sock,writable=on,num-queues=2,iothread=iot0"
  run_jobs qsd null "$sock"
  stop_backend
  start_backend vhost-blk "$work/vb-null.log" "$sock" $java -jar "$jar" serve --socket "$sock" --driver null \
    --size "$size" --queues 2
  run_jobs vhost-blk null "$sock"
  stop_backend
fi
if [ "$do_file" = 1 ]; then
  img="$work/disk.img"
  if [ ! -f "$img" ]; then
    echo "compare.sh: writing $file_size of data to $img (reads of holes would never reach the disk)" >&2
    count=$(( $(numfmt --from=iec "$file_size") >> 20 ))
    dd if=/dev/urandom of="$img" bs=1M count="$count" status=none conv=fsync
  fi
  start_backend qsd "$work/qsd-file.log" "$sock" "$qsd" \
    --blockdev "driver=file,node-name=f0,filename=$img,cache.direct=on,aio=$qsd_aio" --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on,num-queues=2,iothread=iot0"
  run_jobs qsd file "$sock"
  stop_backend
  start_backend vhost-blk "$work/vb-file.log" "$sock" $java -jar "$jar" serve --socket "$sock" --disk "$img" \
    --driver io_uring --queues 2
  run_jobs vhost-blk file "$sock"
  stop_backend
fi
if [ -n "$rbd" ]; then
  rbd_conf=${rbd%%:*} rbd_image=${rbd#*:}
  start_backend qsd "$work/qsd-rbd.log" "$sock" "$qsd" \
    --blockdev "driver=rbd,node-name=r0,pool=${rbd_image%%/*},image=${rbd_image#*/},conf=$rbd_conf,user=admin,cache.direct=on" \
    --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=r0,addr.type=unix,addr.path=$sock,writable=on,num-queues=2,iothread=iot0"
  run_jobs qsd rbd "$sock"
  stop_backend
  start_backend vhost-blk "$work/vb-rbd.log" "$sock" $java -jar "$jar" serve --socket "$sock" --driver rbd \
    --disk "rbd:$rbd_image" --rbd-conf "$rbd_conf" --queues 2
  run_jobs vhost-blk rbd "$sock"
  stop_backend
fi

# The table: one row per backing/job/queues, qsd and vhost-blk side by side, ratio = vhost-blk / qsd.
awk '
function field(line, name,   m) {
  if (match(line, "\"" name "\":[^,}]*")) { m = substr(line, RSTART, RLENGTH); sub(/^"[^"]*":/, "", m); gsub(/"/, "", m); return m }
  return ""
}
function ratio(a, b) { return (b > 0 && a != "" && a != "null") ? sprintf("%.2f", a / b) : "-" }
function num(v, fmt) { return (v == "" || v == "null") ? "-" : sprintf(fmt, v) }
{
  key = field($0, "backing") "|" field($0, "job") "|" field($0, "queues")
  if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  b = field($0, "backend")
  iops[key, b] = field($0, "iops"); p50[key, b] = field($0, "lat_p50_us"); p99[key, b] = field($0, "lat_p99_us")
  cpu[key, b] = field($0, "backend_cpu_us_per_io"); gen[key, b] = field($0, "generator_cpu_us_per_io")
}
END {
  print "| backing | job | queues | IOPS qsd | IOPS vhost-blk | ratio | p50 µs qsd | p50 µs vhost-blk | p99 µs qsd | p99 µs vhost-blk | back-end CPU µs/IO qsd | back-end CPU µs/IO vhost-blk | ratio | generator CPU µs/IO (qsd run / vhost-blk run) |"
  print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= n; i++) {
    k = order[i]; split(k, p, "|"); q = "qsd"; v = "vhost-blk"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n", p[1], p[2], p[3],
      num(iops[k, q], "%.0f"), num(iops[k, v], "%.0f"), ratio(iops[k, v], iops[k, q]),
      num(p50[k, q], "%.1f"), num(p50[k, v], "%.1f"), num(p99[k, q], "%.1f"), num(p99[k, v], "%.1f"),
      num(cpu[k, q], "%.2f"), num(cpu[k, v], "%.2f"), ratio(cpu[k, v], cpu[k, q]),
      num(gen[k, q], "%.2f"), num(gen[k, v], "%.2f")
  }
}' "$results"
echo
echo "JSON reports: $results" >&2
