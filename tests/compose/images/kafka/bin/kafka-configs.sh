#!/usr/bin/env bash
# The Kafka CLI tool of this name.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
