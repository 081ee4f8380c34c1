#!/usr/bin/env bash
# Install Debian packages that are missing; refresh the package lists once.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install.sh: need root to install: ${missing[*]}" >&2
  exit 1
fi
stamp=/var/lib/apt/periodic/webstack-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360)" ]; then
  apt-get update -qq
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "apt-install.sh: installed ${missing[*]}"
