#!/bin/sh
# Options, or a first argument that is no command, are arguments to curl.
set -e
case "${1:-}" in
  -*) set -- curl "$@" ;;
  *) if [ -z "${1:-}" ] || ! command -v "$1" >/dev/null 2>&1; then set -- curl "$@"; fi ;;
esac
exec "$@"
