# shellcheck shell=bash
# Sourced by ./lakehouse and ./initial-setup.sh: make sure the project's virtualenv exists with
# the pinned requirements and the package installed (pip install -e .: the `lakehouse`,
# `telemetry-simulator` and `telemetry-consumer` commands), and export LAKEHOUSE_PYTHON.
lakehouse_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lakehouse_home="${LAKEHOUSE_HOME:-$lakehouse_root/.lakehouse}"
lakehouse_venv="$lakehouse_home/venv"
lakehouse_stamp="$(cat "$lakehouse_root/requirements.txt" "$lakehouse_root/requirements-dev.txt" "$lakehouse_root/pyproject.toml" \
  | sha256sum | cut -c1-16)"

if [ ! -f "$lakehouse_venv/.requirements-$lakehouse_stamp" ]; then
  echo "Preparing Python environment in $lakehouse_venv (first run only) ..." >&2
  python_bin="${PYTHON:-python3}"
  if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "error: python3 (3.11+) is required; install it and run again" >&2
    exit 1
  fi
  if ! "$python_bin" -m venv --help >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q && apt-get install -y -q python3-venv
  fi
  mkdir -p "$lakehouse_home"
  "$python_bin" -m venv "$lakehouse_venv"
  # requirements.txt (through requirements-dev.txt) pins what pyproject.toml's ranges allow.
  if ! "$lakehouse_venv/bin/pip" install -q --disable-pip-version-check -r "$lakehouse_root/requirements-dev.txt" \
      -e "$lakehouse_root"; then
    echo "error: installing Python requirements failed (see above); check network access to PyPI" >&2
    exit 1
  fi
  rm -f "$lakehouse_venv"/.requirements-*
  touch "$lakehouse_venv/.requirements-$lakehouse_stamp"
fi
export LAKEHOUSE_PYTHON="$lakehouse_venv/bin/python"
# This checkout's code even when $LAKEHOUSE_HOME's venv was made from another checkout.
export PYTHONPATH="$lakehouse_root${PYTHONPATH:+:$PYTHONPATH}"
