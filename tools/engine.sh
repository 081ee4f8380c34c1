#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
# An engine that already answers is left alone. Otherwise Debian's docker.io
# is installed (as root) and dockerd is started in the background, logging to
# /var/log/webstack-dockerd.log. Used by `make demo` and `make test`.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "engine.sh: no Docker engine answers and starting one needs root" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "engine.sh: installing Debian's docker.io"
  tools/apt-install.sh docker.io
fi
echo "engine.sh: starting dockerd"
nohup dockerd >/var/log/webstack-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "engine.sh: dockerd did not answer within 60 s; see /var/log/webstack-dockerd.log" >&2
tail -n 20 /var/log/webstack-dockerd.log >&2 || true
exit 1
