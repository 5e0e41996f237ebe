#!/bin/sh
# Installs vhost-blk for systemd from a built checkout (./mvnw -B -DskipTests package first):
#   /usr/lib/vhost-blk/{vhost-blk,launch.sh,jvm.options,find-jdk,vhost-blk.jar,vhost-blk.aot,modules/*.jar}, /usr/local/bin/vhost-blk,
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
# The jar and its AOT cache (made with it by the package phase, packaging/aot-cache.sh) keep their times: the
# JVM accepts the cache only for a jar of the time it was made for, and the launcher only when it is not older.
install -p -m 0644 "$jar" "$dest/usr/lib/vhost-blk/vhost-blk.jar"
rm -f "$dest/usr/lib/vhost-blk/vhost-blk.aot"
if [ -f "${jar%.jar}.aot" ] && ! [ "$jar" -nt "${jar%.jar}.aot" ]; then
  install -p -m 0644 "${jar%.jar}.aot" "$dest/usr/lib/vhost-blk/vhost-blk.aot"
else
  echo "install.sh: no current AOT cache beside $jar (packaged with -Daot.skip=true?): vhost-blk will start more slowly" >&2
fi
install -m 0755 "$root/packaging/vhost-blk" "$dest/usr/lib/vhost-blk/vhost-blk"
install -m 0644 "$root/packaging/launch.sh" "$dest/usr/lib/vhost-blk/launch.sh"
install -m 0755 "$root/bin/find-jdk" "$dest/usr/lib/vhost-blk/find-jdk"
install -m 0644 "$root/packaging/jvm.options" "$dest/usr/lib/vhost-blk/jvm.options"
for m in "$root"/modules/*/target/vhost-blk-module-*.jar; do
  [ -f "$m" ] && install -m 0644 "$m" "$dest/usr/lib/vhost-blk/modules/"
done
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
