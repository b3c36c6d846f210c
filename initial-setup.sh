#!/usr/bin/env bash
# Fresh setup of the lakehouse: wipes previous state, starts every service, waits until each is
# healthy, creates topics, schemas and catalog tables, loads master data, prints the endpoints.
#   ./initial-setup.sh            Docker when a Docker engine answers, native mode otherwise
#   ./initial-setup.sh --native   local processes, no Docker needed
#   ./initial-setup.sh --docker   Docker Compose
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode=auto
case "${1:-}" in
  --native) mode=native ;;
  --docker) mode=docker ;;
  "") ;;
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "error: unknown option '$1' (use --native or --docker)" >&2; exit 2 ;;
esac
if [ "$mode" = auto ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=native; fi
  echo "No mode given: using $mode mode." >&2
fi

source smartmeter/bootstrap.sh
exec "$LAKEHOUSE_PYTHON" -m smartmeter setup "--$mode"
