#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
# An engine that already answers is left alone. Otherwise Debian's docker.io
# is installed (as root) and dockerd is started in the background, logging to
# /var/log/webstack-dockerd.log. Used by `make demo` and `make test`.
set -euo pipefail

# Every host container runs systemd, which takes inotify instances of the
# machine's root user; the kernel's default of 128 stops a new container at
# about the tenth (it exits 255 without a word). Test runs start dozens.
want_inotify=1024
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt "$want_inotify" ]; then
  if [ "$(id -u)" -eq 0 ] && sysctl -qw fs.inotify.max_user_instances="$want_inotify"; then
    echo "engine.sh: fs.inotify.max_user_instances raised to $want_inotify for the host containers"
  else
    echo "engine.sh: fs.inotify.max_user_instances is below $want_inotify: host containers may fail to start" >&2
  fi
fi

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
