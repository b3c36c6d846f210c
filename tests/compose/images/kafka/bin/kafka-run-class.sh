#!/usr/bin/env bash
# Runs one Kafka class on the image's classpath, like the distribution's script of this name.
# Tools get a small, quickly starting JVM; the broker sets KAFKA_HEAP_OPTS itself.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CLASS [ARGS...]" >&2; exit 1; }
home=/opt/kafka
log4j="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$home/config/tools-log4j2.properties}"
heap="${KAFKA_HEAP_OPTS:--Xmx256M}"
performance="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
# shellcheck disable=SC2086 # option lists are meant to split into words
exec java $heap $performance ${KAFKA_OPTS:-} "$log4j" -Dkafka.logs.dir=/tmp -cp "$home/libs/*" "$@"
