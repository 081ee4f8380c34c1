#!/usr/bin/env bash
# All set-up on a fresh machine of this kind, safe to run again:
#   Debian packages, a Docker engine, the Python environment (.venv), and the
#   local host images. Everything it does is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/apt-install.sh mmdebstrap docker.io docker-registry curl openssl ca-certificates git rsync
tools/engine.sh

VENV="${WEBSTACK_VENV:-.venv}"
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.webstack-requirements" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap.sh: installing Python requirements into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-test.txt
  echo "$want" >"$VENV/.webstack-requirements"
fi

tools/images.sh
