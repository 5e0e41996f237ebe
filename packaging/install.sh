#!/bin/sh
# Installs vhost-blk for systemd from a built checkout (./mvnw -B -DskipTests package first):
#   /usr/lib/vhost-blk/{vhost-blk,find-jdk,vhost-blk.jar,modules/*.jar}, /usr/local/bin/vhost-blk,
#   /etc/systemd/system/vhost-blk@.service, /etc/vhost-blk/, /var/lib/vhost-blk/,
#   /usr/share/bash-completion/completions/vhost-blk.
# Usage: packaging/install.sh [DESTDIR]   (as root; DESTDIR for staging a package)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-}
jar="$root/server/target/vhost-blk.jar"
[ -f "$jar" ] || { echo "install.sh: $jar is missing: run ./mvnw -B -DskipTests package first" >&2; exit 1; }
install -d "$dest/usr/lib/vhost-blk/modules" "$dest/usr/local/bin" "$dest/etc/systemd/system" \
  "$dest/etc/vhost-blk" "$dest/var/lib/vhost-blk" "$dest/usr/share/bash-completion/completions"
install -m 0644 "$jar" "$dest/usr/lib/vhost-blk/vhost-blk.jar"
install -m 0755 "$root/packaging/vhost-blk" "$dest/usr/lib/vhost-blk/vhost-blk"
install -m 0755 "$root/bin/find-jdk" "$dest/usr/lib/vhost-blk/find-jdk"
install -m 0644 "$root/packaging/jvm.options" "$dest/usr/lib/vhost-blk/jvm.options"
for m in "$root"/modules/*/target/vhost-blk-module-*.jar; do
  [ -f "$m" ] && install -m 0644 "$m" "$dest/usr/lib/vhost-blk/modules/"
done
# An AOT cache of the classes a serve loads (JDK 25, JEP 514) shortens the start-up: record it from a
# short training run that serves a RAM disk, for exactly this jar at its final path (so not when
# staging into a DESTDIR: the JVM would refuse a cache made for another path).
if [ -z "$dest" ]; then
train=$(mktemp -d)
java_home=$("$root/bin/find-jdk")
opts=$(sed -e 's/#.*//' "$root/packaging/jvm.options" | tr '\n' ' ')
# shellcheck disable=SC2086
"$java_home/bin/java" --enable-native-access=ALL-UNNAMED $opts -XX:AOTCacheOutput="$dest/usr/lib/vhost-blk/vhost-blk.aot" \
  -jar "$dest/usr/lib/vhost-blk/vhost-blk.jar" serve --socket "$train/s" --driver ram --size 1M >"$train/log" 2>&1 &
pid=$!
sleep 3
kill -TERM "$pid"
wait "$pid" || { echo "install.sh: the AOT training run failed (serving without the cache):" >&2; cat "$train/log" >&2; rm -f "$dest/usr/lib/vhost-blk/vhost-blk.aot"; }
rm -rf "$train"
fi
ln -sf /usr/lib/vhost-blk/vhost-blk "$dest/usr/local/bin/vhost-blk"
# Bash completion (picocli's AutoComplete): the packaged script covers the built-in commands; installed in
# place, the script is generated again so the module jars' commands (crypt, reduce, ...) complete too.
completion="$dest/usr/share/bash-completion/completions/vhost-blk"
install -m 0644 "$root/packaging/bash-completion/vhost-blk" "$completion"
if [ -z "$dest" ] && "$dest/usr/lib/vhost-blk/vhost-blk" completion >"$completion.new" 2>/dev/null; then
  mv "$completion.new" "$completion"
else
  rm -f "$completion.new"
fi
install -m 0644 "$root/packaging/systemd/vhost-blk@.service" "$dest/etc/systemd/system/vhost-blk@.service"
install -m 0644 "$root/packaging/vhost-blk.env.example" "$dest/etc/vhost-blk/example.env.sample"
echo "installed; per disk: write /etc/vhost-blk/NAME.env, then systemctl enable --now vhost-blk@NAME"
