#!/usr/bin/env bash
# Compares vhost-blk with qemu-storage-daemon on one machine in one run: the same backing, the
# same queue count, the same jobs, the same load generator (vhost-blk bench, which plays QEMU's
# front-end part), one back-end alive at a time. Prints a markdown table of min / median over
# the repetitions (and keeps every JSON report).
#
#   bench/compare.sh [--backend-cpus LIST] [--generator-cpus LIST] [--unpinned] [--reps N]
#                    [--runtime 5s] [--ramp 1s] [--warmup 5s] [--file-size 1G] [--no-file] [--no-null]
#                    [--queues "1 2"] [--bench-args "--poll"] [--vb-args "--poll-us 0"]
#                    [--qsd-aio io_uring|native] [--work DIR] [--jobs "NAME:ARGS;..."]
#                    [--rbd CONF:POOL/IMAGE] [--pin BACKEND_CPUS:GENERATOR_CPUS] [--disk-alone]
#
# Pinning (default): the back-end under test runs on --backend-cpus and the load generator on
# --generator-cpus (taskset -c lists; default: the last CPU for the generator, all others for
# the back-end), as in production where a guest's vCPU and the back-end do not share a core.
# --unpinned lets the scheduler place both anywhere; its table says so.
# Each backing runs --reps rounds (default 2); a round starts qsd, runs every job, stops it,
# then does the same with vhost-blk, so the two alternate and drift in the machine's load hits
# both. The table reports min and median of each figure over the rounds. Before its measured
# jobs, each freshly started back-end runs every job once for --warmup (not recorded; 0 skips):
# otherwise the JVM compiling vhost-blk's paths for an op counts as CPU of the first job to use
# it (at ~1 k IOPS that doubled vhost-blk's CPU per 4 KiB rbd write; docs/benchmarks.md).
# Backings: "null" (qsd null-co,read-zeroes=off vs vhost-blk --driver null) and "file" (a fully
# written image opened with O_DIRECT: qsd cache.direct=on,aio=io_uring (or --qsd-aio native) vs
# vhost-blk --driver io_uring). Both back-ends export as many queues as the largest --queues.
# With --rbd, also "rbd": an existing Ceph RBD image (qsd driver=rbd vs vhost-blk --driver rbd;
# the client is client.admin with the keyring CONF names; qsd needs qemu-block-extra).
# --disk-alone adds, in each file round, fio on the image itself (io_uring, O_DIRECT, the job's
# --rw/--bs/--iodepth, one fio job per queue) on the back-end CPUs: the disk's ceiling at that
# depth, which no back-end can pass. Its table follows the main one.
# qemu-storage-daemon runs its export in an iothread (--object iothread + iothread=), as QEMU
# users configure it. vhost-blk runs with its defaults plus --vb-args.
# Needs: qemu-storage-daemon, taskset (util-linux), JDK 25 (bin/find-jdk), the server jar
# (built when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

runtime=5s
ramp=1s
warmup=5s
file_size=1G
qsd_aio=io_uring
do_null=1
do_file=1
rbd=""
disk_alone=0
work=""
reps=2
pinned=1
queue_counts="1 2"
backend_cpus=""
generator_cpus=""
bench_args=""
vb_args=""
jobs="randread-4k-qd1:--rw randread --bs 4k --iodepth 1;randread-4k-qd32:--rw randread --bs 4k --iodepth 32;randwrite-4k-qd32:--rw randwrite --bs 4k --iodepth 32;read-128k-qd8:--rw read --bs 128k --iodepth 8"
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --file-size) file_size=$2; shift 2 ;;
    --qsd-aio) qsd_aio=$2; shift 2 ;;
    --no-file) do_file=0; shift ;;
    --no-null) do_null=0; shift ;;
    --rbd) rbd=$2; shift 2 ;;
    --disk-alone) disk_alone=1; shift ;;
    --pin) backend_cpus=${2%%:*}; generator_cpus=${2#*:}; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --queues) queue_counts=$2; shift 2 ;;
    --backend-cpus) backend_cpus=$2; shift 2 ;;
    --generator-cpus) generator_cpus=$2; shift 2 ;;
    --unpinned) pinned=0; shift ;;
    --bench-args) bench_args=$2; shift 2 ;;
    --vb-args) vb_args=$2; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$reps" in ''|*[!0-9]*|0) echo "compare.sh: --reps needs a positive number, not '$reps'" >&2; exit 2 ;; esac
max_queues=1
for q in $queue_counts; do
  case "$q" in ''|*[!0-9]*|0) echo "compare.sh: --queues needs positive numbers, not '$q'" >&2; exit 2 ;; esac
  [ "$q" -gt "$max_queues" ] && max_queues=$q
done

# The CPU lists and the prefixes that apply them.
backend_pin=()
generator_pin=()
if [ "$pinned" = 1 ]; then
  command -v taskset > /dev/null || { echo "compare.sh: taskset not found (apt-get install util-linux), or use --unpinned" >&2; exit 1; }
  ncpu=$(nproc --all)
  if [ "$ncpu" -lt 2 ] && { [ -z "$backend_cpus" ] || [ -z "$generator_cpus" ]; }; then
    echo "compare.sh: $ncpu CPU: pinning needs two; give --backend-cpus and --generator-cpus or --unpinned" >&2
    exit 2
  fi
  last=$((ncpu - 1))
  [ -n "$generator_cpus" ] || generator_cpus=$last
  [ -n "$backend_cpus" ] || backend_cpus=$([ "$last" -eq 1 ] && echo 0 || echo "0-$((last - 1))")
  backend_pin=(taskset -c "$backend_cpus")
  generator_pin=(taskset -c "$generator_cpus")
  placement="pinned: back-end on CPU $backend_cpus, generator on CPU $generator_cpus"
else
  placement="UNPINNED: the scheduler places back-end and generator on any of $(nproc --all) CPUs"
fi

java_home=$("$root/bin/find-jdk")
java=("$java_home/bin/java" "@$root/packaging/jvm.options")
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

# start_backend NAME LOG SOCKET COMMAND...: runs it (pinned) in the background, waits for its socket.
start_backend() {
  local name=$1 log=$2 sock=$3
  shift 3
  rm -f "$sock"
  "${backend_pin[@]}" "$@" > "$log" 2>&1 &
  backend_pid=$!
  for _ in $(seq 1 200); do
    [ -S "$sock" ] && return 0
    kill -0 "$backend_pid" 2>/dev/null || { echo "compare.sh: $name exited early; log:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "compare.sh: $name did not create $sock in 20 s" >&2
  exit 1
}

# run_jobs BACKEND BACKING SOCKET ROUND: every job on each queue count; one JSON line each, tagged.
run_jobs() {
  local backend=$1 backing=$2 sock=$3 round=$4
  case "$warmup" in 0|0s) ;; *) each_job warm_job "$backend" "$backing" "$sock" "$round" ;; esac
  each_job measured_job "$backend" "$backing" "$sock" "$round"
}

# each_job FUNCTION ARGS...: FUNCTION ARGS... NAME BENCH-ARGS QUEUES for every job and queue count.
each_job() {
  local IFS_SAVE=$IFS
  IFS=';'
  for job in $jobs; do
    IFS=$IFS_SAVE
    for q in $queue_counts; do
      "$@" "${job%%:*}" "${job#*:}" "$q"
    done
    IFS=';'
  done
  IFS=$IFS_SAVE
}

warm_job() {
  local backend=$1 backing=$2 sock=$3 round=$4 name=$5 args=$6 q=$7 out
  echo "  round $round: $backend $backing $name queues=$q warm-up $warmup (not recorded)" >&2
  # shellcheck disable=SC2086
  out=$("${generator_pin[@]}" "${java[@]}" -jar "$jar" bench --socket "$sock" $args $bench_args --queues "$q" \
    --runtime "$warmup" --json) || { echo "compare.sh: warm-up bench failed: $out" >&2; exit 1; }
}

measured_job() {
  local backend=$1 backing=$2 sock=$3 round=$4 name=$5 args=$6 q=$7 out
  echo "  round $round: $backend $backing $name queues=$q" >&2
  # shellcheck disable=SC2086
  out=$("${generator_pin[@]}" "${java[@]}" -jar "$jar" bench --socket "$sock" $args $bench_args --queues "$q" \
    --runtime "$runtime" --ramp "$ramp" --pid "$backend_pid" --json) || { echo "compare.sh: bench failed: $out" >&2; exit 1; }
  echo "{\"backend\":\"$backend\",\"backing\":\"$backing\",\"job\":\"$name\",\"round\":$round,${out#\{}" >> "$results"
}

# fio on the image alone, with the job's pattern and depth: the disk's own ceiling (--disk-alone).
fio_job() {
  local round=$1 name=$2 args=$3 q=$4 rw="" bs="" depth="" out iops p50
  set -- $args
  while [ $# -gt 0 ]; do
    case "$1" in
      --rw) rw=$2; shift 2 ;;
      --bs) bs=$2; shift 2 ;;
      --iodepth) depth=$2; shift 2 ;;
      *) shift ;;
    esac
  done
  echo "  round $round: fio (disk alone) file $name queues=$q" >&2
  out=$("${backend_pin[@]}" fio --name=alone --filename="$img" --direct=1 --ioengine=io_uring --rw="${rw:-randread}" \
    --bs="${bs:-4k}" --iodepth="${depth:-1}" --numjobs="$q" --group_reporting --time_based --runtime="$runtime" \
    --ramp_time="$ramp" --output-format=terse --terse-version=3) || { echo "compare.sh: fio failed: $out" >&2; exit 1; }
  # terse v3: read IOPS is field 8 and its completion-latency percentiles fields 18-37; write: 49, 59-78.
  iops=$(echo "$out" | awk -F';' '{ print $8 + $49 }')
  p50=$(echo "$out" | awk -F';' '{ for (i = 18; i <= 78; i++) if ($i ~ /^50\.0+%=/ && $i !~ /=0$/) { sub(/.*=/, "", $i); print $i; exit } }')
  echo "{\"backend\":\"fio\",\"backing\":\"file\",\"job\":\"$name\",\"round\":$round,\"queues\":$q,\"iops\":$iops,\"lat_p50_us\":${p50:-null}}" >> "$results"
}

start_qsd_null() {
  start_backend qsd "$work/qsd-null-$1.log" "$sock" "$qsd" \
    --blockdev "driver=null-co,node-name=n0,size=$null_size,read-zeroes=off" --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$max_queues,iothread=iot0"
}
start_vb_null() {
  # shellcheck disable=SC2086
  start_backend vhost-blk "$work/vb-null-$1.log" "$sock" "${java[@]}" -jar "$jar" serve --socket "$sock" --driver null \
    --size "$null_size" --queues "$max_queues" $vb_args
}
start_qsd_file() {
  start_backend qsd "$work/qsd-file-$1.log" "$sock" "$qsd" \
    --blockdev "driver=file,node-name=f0,filename=$img,cache.direct=on,aio=$qsd_aio" --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$max_queues,iothread=iot0"
}
start_vb_file() {
  # shellcheck disable=SC2086
  start_backend vhost-blk "$work/vb-file-$1.log" "$sock" "${java[@]}" -jar "$jar" serve --socket "$sock" --disk "$img" \
    --driver io_uring --queues "$max_queues" $vb_args
}

start_qsd_rbd() {
  start_backend qsd "$work/qsd-rbd-$1.log" "$sock" "$qsd" \
    --blockdev "driver=rbd,node-name=r0,pool=${rbd_image%%/*},image=${rbd_image#*/},conf=$rbd_conf,user=admin,cache.direct=on" \
    --object iothread,id=iot0 \
    --export "type=vhost-user-blk,id=e0,node-name=r0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$max_queues,iothread=iot0"
}
start_vb_rbd() {
  # shellcheck disable=SC2086
  start_backend vhost-blk "$work/vb-rbd-$1.log" "$sock" "${java[@]}" -jar "$jar" serve --socket "$sock" --driver rbd \
    --disk "rbd:$rbd_image" --rbd-conf "$rbd_conf" --queues "$max_queues" $vb_args
}

# compare BACKING: the rounds, qsd and vhost-blk alternating.
compare() {
  local backing=$1
  for round in $(seq 1 "$reps"); do
    "start_qsd_$backing" "$round"
    run_jobs qsd "$backing" "$sock" "$round"
    stop_backend
    "start_vb_$backing" "$round"
    run_jobs vhost-blk "$backing" "$sock" "$round"
    stop_backend
    if [ "$backing" = file ] && [ "$disk_alone" = 1 ]; then
      each_job fio_job "$round"
    fi
  done
}

echo "compare.sh: $placement; $reps rounds; work directory $work" >&2
sock="$work/blk.sock"
null_size=$((8 << 30))
img="$work/disk.img"
if [ "$do_null" = 1 ]; then
  compare null
fi
if [ "$do_file" = 1 ]; then
  if [ "$disk_alone" = 1 ] && ! command -v fio > /dev/null; then
    echo "compare.sh: --disk-alone needs fio (apt-get install fio)" >&2; exit 1
  fi
  if [ ! -f "$img" ]; then
    echo "compare.sh: writing $file_size of data to $img (reads of holes would never reach the disk)" >&2
    count=$(( $(numfmt --from=iec "$file_size") >> 20 ))
    dd if=/dev/urandom of="$img" bs=1M count="$count" status=none conv=fsync
  fi
  compare file
fi
if [ -n "$rbd" ]; then
  rbd_conf=${rbd%%:*} rbd_image=${rbd#*:}
  compare rbd
fi

# The table: one row per backing/job/queues; each cell "min / median" over the rounds;
# ratio = median vhost-blk / median qsd.
echo "$placement; $reps rounds (qsd and vhost-blk alternating); cells are min / median"
echo "vhost-blk serve extra arguments: '${vb_args}'; bench extra arguments: '${bench_args}'"
echo
awk '
function field(line, name,   m) {
  if (match(line, "\"" name "\":[^,}]*")) { m = substr(line, RSTART, RLENGTH); sub(/^"[^"]*":/, "", m); gsub(/"/, "", m); return m }
  return ""
}
function add(k, b, name, v) { if (v != "" && v != "null") { n_[k, b, name]++; val[k, b, name, n_[k, b, name]] = v + 0 } }
# sorts val[k, b, name, 1..n] in place (insertion sort; a handful of rounds)
function sorted(k, b, name,   i, j, t, n) {
  n = n_[k, b, name]
  for (i = 2; i <= n; i++) { t = val[k, b, name, i]; for (j = i - 1; j >= 1 && val[k, b, name, j] > t; j--) val[k, b, name, j + 1] = val[k, b, name, j]; val[k, b, name, j + 1] = t }
  return n
}
function med(k, b, name,   n) {
  n = sorted(k, b, name)
  if (n == 0) return ""
  return n % 2 ? val[k, b, name, (n + 1) / 2] : (val[k, b, name, n / 2] + val[k, b, name, n / 2 + 1]) / 2
}
function cell(k, b, name, fmt,   n) {
  n = sorted(k, b, name)
  if (n == 0) return "-"
  return sprintf(fmt " / " fmt, val[k, b, name, 1], med(k, b, name))
}
function ratio(a, b) { return (b != "" && b > 0 && a != "") ? sprintf("%.2f", a / b) : "-" }
{
  key = field($0, "backing") "|" field($0, "job") "|" field($0, "queues")
  if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  b = field($0, "backend")
  add(key, b, "iops", field($0, "iops")); add(key, b, "p50", field($0, "lat_p50_us")); add(key, b, "p99", field($0, "lat_p99_us"))
  add(key, b, "cpu", field($0, "backend_cpu_us_per_io")); add(key, b, "gen", field($0, "generator_cpu_us_per_io"))
}
END {
  print "| backing | job | queues | IOPS qsd | IOPS vhost-blk | ratio | p50 µs qsd | p50 µs vhost-blk | p99 µs qsd | p99 µs vhost-blk | back-end CPU µs/IO qsd | back-end CPU µs/IO vhost-blk | ratio | generator CPU µs/IO qsd | generator CPU µs/IO vhost-blk |"
  print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= n; i++) {
    k = order[i]; split(k, p, "|"); q = "qsd"; v = "vhost-blk"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2], p[3],
      cell(k, q, "iops", "%.0f"), cell(k, v, "iops", "%.0f"), ratio(med(k, v, "iops"), med(k, q, "iops")),
      cell(k, q, "p50", "%.1f"), cell(k, v, "p50", "%.1f"), cell(k, q, "p99", "%.1f"), cell(k, v, "p99", "%.1f"),
      cell(k, q, "cpu", "%.2f"), cell(k, v, "cpu", "%.2f"), ratio(med(k, v, "cpu"), med(k, q, "cpu")),
      cell(k, q, "gen", "%.2f"), cell(k, v, "gen", "%.2f")
  }
  for (i = 1; i <= n; i++) {
    k = order[i]
    if (!n_[k, "fio", "iops"]) continue
    if (!alone++) {
      print ""
      print "The disk alone (fio on the image, io_uring, O_DIRECT, on the back-end CPUs) and each back-end median IOPS as a share of it:"
      print ""
      print "| backing | job | queues | IOPS fio | p50 µs fio | qsd / fio | vhost-blk / fio |"
      print "|---|---|---:|---:|---:|---:|---:|"
    }
    split(k, p, "|")
    printf "| %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2], p[3], cell(k, "fio", "iops", "%.0f"), cell(k, "fio", "p50", "%.1f"),
      ratio(med(k, "qsd", "iops"), med(k, "fio", "iops")), ratio(med(k, "vhost-blk", "iops"), med(k, "fio", "iops"))
  }
}' "$results"
echo
echo "JSON reports: $results" >&2
