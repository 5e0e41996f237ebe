#!/bin/sh
# Makes the AOT cache of the vhost-blk jar (JDK 25, JEP 483/514: the classes a serve loads, parsed and
# linked ahead of time), which the launchers (packaging/launch.sh) pass to java when it is there:
#
#   packaging/aot-cache.sh JAVA JAR CACHE
#
# Run by the server module's Maven package phase (after the jar; -Daot.skip=true skips it). The training
# run is a serve of a 1 MiB RAM disk, with the launchers' JVM options, stopped with SIGTERM once its
# socket listens; the JVM writes CACHE as it exits. The cache stays valid where the jar is copied with
# its modification time (install -p); another JDK or other JVM options make the JVM refuse it, with a
# warning, and start without. When training fails this says why and leaves no cache: the launchers then
# start without one, only more slowly.
set -eu
java=$1
jar=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
cache=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
options="$(cd "$(dirname "$0")" && pwd)/jvm.options"
train=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$train"' EXIT
rm -f "$cache"
# Run where a crash report (hs_err_pid*.log) lands in the scratch directory, not in the checkout.
cd "$train"
"$java" "@$options" -XX:AOTCacheOutput="$cache" -jar "$jar" serve --socket "$train/s.sock" --driver ram --size 1M \
  >"$train/log" 2>&1 &
pid=$!
i=0
while [ ! -S "$train/s.sock" ] && [ $i -lt 600 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
if [ -S "$train/s.sock" ]; then
  kill -TERM "$pid"
fi
status=0
wait "$pid" || status=$?
pid=""
rm -f "$cache.config" # the JVM's intermediate file, left behind when assembling the cache failed
if [ $status -ne 0 ] || [ ! -s "$cache" ]; then
  # (An empty cache: the JVM that assembles it crashed, e.g. a JDK bug; the training run still exits 0.)
  echo "aot-cache.sh: the training run failed (status $status): no AOT cache, the launchers start without one. Its log:" >&2
  grep -v '\[aot\] Skipping ' "$train/log" >&2 || true
  for f in "$train"/hs_err_pid*.log; do [ -f "$f" ] && head -n 20 "$f" >&2; done
  rm -f "$cache"
  exit 0
fi
echo "aot-cache.sh: wrote $cache ($(wc -c <"$cache") bytes)"
