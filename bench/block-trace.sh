#!/usr/bin/env bash
# Where a back-end's block requests wait: traces one process for a few seconds with perf's block
# tracepoints and prints, per request it queued,
#   queued -> issued:    block_bio_queue (the back-end builds the request) to block_rq_issue
#                        (the driver hands it to the device); a plugged batch waits here
#   issued -> complete:  block_rq_issue to block_rq_complete (the device's own latency)
# and how many requests each io_uring_enter carried.
#
#   bench/block-trace.sh PID [SECONDS]      (default 2; run it while a benchmark drives PID)
#
# Needs root, perf (Debian: linux-perf) and tracefs (mounted on /sys/kernel/tracing if missing).
# docs/benchmarks.md, "Why the O_DIRECT path lost to qsd", shows what it found.
set -euo pipefail
pid=${1:?usage: bench/block-trace.sh PID [SECONDS]}
secs=${2:-2}
command -v perf > /dev/null || { echo "block-trace.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
data=$(mktemp /tmp/block-trace.XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -q -a -o "$data" -e block:block_bio_queue,block:block_rq_issue,block:block_rq_complete \
  -e syscalls:sys_enter_io_uring_enter sleep "$secs" 2> /dev/null
perf script -i "$data" -F pid,time,event,trace 2> /dev/null | awk -v pid="$pid" '
  function hex(s,   i, v) { v = 0; s = tolower(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
  function pct(a, n, p) { return n ? a[int((n - 1) * p) + 1] : 0 }
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  {
    p = $1 + 0; t = $2; sub(/:$/, "", t); ev = $3
    if (ev == "syscalls:sys_enter_io_uring_enter:") {
      if (p == pid && match($0, /to_submit: 0x[0-9a-f]+/)) { v = hex(substr($0, RSTART + 13, RLENGTH - 13)); if (v > 0) { enters++; sqes += v } }
      next
    }
    if (!match($0, /[0-9]+ \+ [0-9]+/)) next
    sector = substr($0, RSTART, RLENGTH)
    if (ev == "block:block_bio_queue:" && p == pid) queued[sector] = t
    else if (ev == "block:block_rq_issue:" && (sector in queued)) { w[++nw] = (t - queued[sector]) * 1e6; delete queued[sector]; issued[sector] = t }
    else if (ev == "block:block_rq_complete:" && (sector in issued)) { d[++nd] = (t - issued[sector]) * 1e6; delete issued[sector] }
  }
  END {
    sort(w, nw); sort(d, nd); sw = 0; for (i = 1; i <= nw; i++) sw += w[i]; sd = 0; for (i = 1; i <= nd; i++) sd += d[i]
    printf "requests: %d; queued -> issued µs: mean %.1f p50 %.1f p90 %.1f; issued -> complete µs: mean %.1f p50 %.1f\n",
      nw, nw ? sw / nw : 0, pct(w, nw, .5), pct(w, nw, .9), nd ? sd / nd : 0, pct(d, nd, .5)
    printf "io_uring_enter calls that submitted: %d, SQEs per call: %.1f\n", enters, enters ? sqes / enters : 0
  }'
