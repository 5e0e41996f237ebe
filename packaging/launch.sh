# The java command line of both vhost-blk launchers (bin/vhost-blk in a checkout, the installed
# /usr/lib/vhost-blk/vhost-blk that the systemd unit runs); sourced, not run.
#
#   vhost_blk_exec JAVA_HOME OPTIONS_FILE JAR [ARGS...]
#
# Runs JAR with the JVM options of OPTIONS_FILE (packaging/jvm.options, a java @argument file), then
# $VHOST_BLK_JAVA_OPTS, and the AOT cache beside the jar (JAR with .aot for .jar; made with the jar by
# packaging/aot-cache.sh) when it is there and not older than the jar. Without a usable cache the JVM
# starts as fast as it can without one: a cache older than the jar is skipped here, with a line on
# standard error; one the JVM itself refuses (another JDK, other options) makes it warn on standard
# error and run without.
vhost_blk_exec() {
  java_home=$1 options=$2 jar=$3
  shift 3
  aot=${jar%.jar}.aot
  if [ -f "$aot" ] && ! [ "$jar" -nt "$aot" ]; then
    # shellcheck disable=SC2086 # the extra options are words by design
    exec "$java_home/bin/java" "@$options" "-XX:AOTCache=$aot" ${VHOST_BLK_JAVA_OPTS:-} -jar "$jar" "$@"
  fi
  if [ -f "$aot" ]; then
    echo "vhost-blk: $aot is older than $jar, starting without it (slower start; ./mvnw package makes a new one)" >&2
  fi
  # shellcheck disable=SC2086
  exec "$java_home/bin/java" "@$options" ${VHOST_BLK_JAVA_OPTS:-} -jar "$jar" "$@"
}
