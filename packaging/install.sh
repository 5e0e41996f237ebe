#!/bin/sh
# Installs vhost-blk for systemd from a built checkout (./mvnw -B -DskipTests package first):
#   /usr/lib/vhost-blk/{vhost-blk,find-jdk,vhost-blk.jar,modules/*.jar}, /usr/local/bin/vhost-blk,
#   /etc/systemd/system/vhost-blk@.service, /etc/vhost-blk/, /var/lib/vhost-blk/.
# Usage: packaging/install.sh [DESTDIR]   (as root; DESTDIR for staging a package)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-}
jar="$root/server/target/vhost-blk.jar"
[ -f "$jar" ] || { echo "install.sh: $jar is missing: run ./mvnw -B -DskipTests package first" >&2; exit 1; }
install -d "$dest/usr/lib/vhost-blk/modules" "$dest/usr/local/bin" "$dest/etc/systemd/system" \
  "$dest/etc/vhost-blk" "$dest/var/lib/vhost-blk"
install -m 0644 "$jar" "$dest/usr/lib/vhost-blk/vhost-blk.jar"
install -m 0755 "$root/packaging/vhost-blk" "$dest/usr/lib/vhost-blk/vhost-blk"
install -m 0755 "$root/bin/find-jdk" "$dest/usr/lib/vhost-blk/find-jdk"
for m in "$root"/modules/*/target/vhost-blk-module-*.jar; do
  [ -f "$m" ] && install -m 0644 "$m" "$dest/usr/lib/vhost-blk/modules/"
done
ln -sf /usr/lib/vhost-blk/vhost-blk "$dest/usr/local/bin/vhost-blk"
install -m 0644 "$root/packaging/systemd/vhost-blk@.service" "$dest/etc/systemd/system/vhost-blk@.service"
install -m 0644 "$root/packaging/vhost-blk.env.example" "$dest/etc/vhost-blk/example.env.sample"
echo "installed; per disk: write /etc/vhost-blk/NAME.env, then systemctl enable --now vhost-blk@NAME"
