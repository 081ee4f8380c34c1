#!/usr/bin/env bash
# Build the local host images from Debian packages only:
#   mmdebstrap <suite> | docker import
#
#   webstack/host:bookworm     Debian 12, systemd as PID 1, python3, sudo, sshd
#   webstack/host:trixie       Debian 13, the same
#   webstack/dockerhost:trixie Debian 13 plus docker.io, docker-cli and the
#                              compose v2 plugin; runs its own dockerd
#   webstack/node:trixie       Debian 13 with Debian's nodejs: the base that
#                              application images are built FROM
#   webstack/awsboot:trixie    dockerhost plus what an Auto Scaling instance's
#                              boot installs (Debian's ansible, boto3) and the
#                              app host roles' packages: the golden image of
#                              the boot test (tools/test.sh aws-boot), as an
#                              AMI baked for fast boots would be
#
# An image is rebuilt only when its inputs (this script, suite, package list)
# change: the hash of the inputs is kept in the image label webstack.inputs.
# Usage: tools/images.sh [bookworm|trixie|dockerhost ...]   (default: all)
set -euo pipefail

MIRROR="${WEBSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when the way images are made changes: every image is then rebuilt.
RECIPE=2
HOST_PACKAGES="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,openssh-server,iproute2,procps,ca-certificates,gnupg"
DOCKER_PACKAGES="docker.io,docker-cli,docker-compose,iptables"
# Base of the application images (no systemd): the Node.js runtime from Debian.
NODE_PACKAGES="nodejs,ca-certificates,curl,tini"
# The golden image of an app instance: the user data's own packages
# (roles/ec2_autoscaling/templates/user_data.sh.j2) and those the app host
# roles install (base, docker_host, nginx, log_shipping, firewall defaults).
# The user data still installs whatever an image lacks.
AWSBOOT_PACKAGES="ansible,ansible-core,python3-boto3,python3-passlib,curl,\
apt-transport-https,gnupg,jq,less,logrotate,rsync,vim-tiny,tzdata,systemd-timesyncd,unattended-upgrades,\
apt-listchanges,auditd,acct,sysstat,debsums,needrestart,libpam-pwquality,libpam-tmpdir,kmod,fail2ban,\
python3-systemd,chkrootkit,python3-requests,nginx,python3-cryptography,ssl-cert,libnginx-mod-http-js,\
rsyslog,rsyslog-relp,ufw"

build() { # build <ref> <suite> <packages> [more APT sources, one "deb ..." line each]
  local ref="$1" suite="$2" packages="$3"
  shift 3
  local inputs
  inputs=$(printf '%s\n' "$RECIPE" "$suite" "$packages" "$MIRROR" "$@" | sha256sum | cut -c1-16)
  local have
  have=$(docker image inspect -f '{{ index .Config.Labels "webstack.inputs" }}' "$ref" 2>/dev/null || true)
  if [ "$have" = "$inputs" ]; then
    echo "images.sh: $ref is up to date ($inputs)"
    return 0
  fi
  echo "images.sh: building $ref from Debian $suite ($inputs)"
  local log
  log=$(mktemp)
  # Package lists stay in the image, as on a cloud image: a check-mode run
  # on a fresh host can then tell which packages it would install.
  if ! mmdebstrap --variant=apt --include="$packages" --skip=cleanup/apt/lists \
      --customize-hook='rm -f "$1"/etc/machine-id; touch "$1"/etc/machine-id' \
      --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-firstboot.service >/dev/null 2>&1 || true' \
      "$suite" - "$MIRROR" "$@" 2>"$log" |
    docker import \
      --change 'CMD ["/sbin/init"]' \
      --change 'ENV container=docker' \
      --change "LABEL webstack.inputs=$inputs" \
      - "$ref" >/dev/null; then
    echo "images.sh: building $ref failed:" >&2
    tail -n 30 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "images.sh: built $ref"
}

targets=("$@")
# awsboot only on demand (tools/test.sh aws-boot needs it).
[ "${#targets[@]}" -eq 0 ] && targets=(bookworm trixie dockerhost node)
for t in "${targets[@]}"; do
  case "$t" in
    bookworm) build webstack/host:bookworm bookworm "$HOST_PACKAGES" ;;
    trixie) build webstack/host:trixie trixie "$HOST_PACKAGES" ;;
    dockerhost) build webstack/dockerhost:trixie trixie "$HOST_PACKAGES,$DOCKER_PACKAGES" ;;
    node) build webstack/node:trixie trixie "$NODE_PACKAGES" ;;
    # Like Debian's cloud images, with the security suite among its sources.
    awsboot) build webstack/awsboot:trixie trixie "$HOST_PACKAGES,$DOCKER_PACKAGES,$AWSBOOT_PACKAGES" \
      "deb ${WEBSTACK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} trixie-security main" ;;
    *) echo "images.sh: unknown image '$t' (expected bookworm, trixie, dockerhost, node or awsboot)" >&2; exit 2 ;;
  esac
done
