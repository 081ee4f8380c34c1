#!/usr/bin/env bash
# The main job on the local fleet: the sample platform (nginx with TLS,
# Redis, the API blue/green) deployed with site.yml, a second run that must
# change nothing, then a release of the next version with zero failed
# requests. `make demo` runs tools/bootstrap.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
INVENTORY=inventories/local
# WEBSTACK_FLEET_PREFIX / WEBSTACK_FLEET_PORT_OFFSET run a second fleet beside this one.
OFFSET=${WEBSTACK_FLEET_PORT_OFFSET:-0}
URL=https://127.0.0.1:$((8443 + OFFSET))

echo "==> application images (sample API v1, v2, broken v3; Redis)"
tools/app-images.sh

echo "==> local fleet"
ansible-playbook -i "$INVENTORY" playbooks/local_fleet.yml

echo "==> site.yml"
ansible-playbook -i "$INVENTORY" site.yml

echo "==> site.yml again: nothing may change"
log=$(mktemp)
ansible-playbook -i "$INVENTORY" site.yml | tee "$log"
if grep -Eq 'changed=[1-9]' "$log"; then
  echo "demo.sh: the second run changed something: site.yml is not idempotent" >&2
  exit 1
fi
rm -f "$log"

version() { curl -sk --max-time 5 -H 'Host: sample.webstack.test' "$URL/health"; echo; }
echo "==> serving: $(version)"

echo "==> release v2, blue/green, one host at a time"
ansible-playbook -i "$INVENTORY" playbooks/release.yml -e bluegreen_version=v2

echo
echo "The sample platform runs on the local fleet:"
echo "  $URL (Host: sample.webstack.test; certificate from the platform CA)"
echo "  https://127.0.0.1:$((9443 + OFFSET)) (second app host)"
echo "  /health answers: $(version)"
echo "Roll back with: ansible-playbook -i $INVENTORY playbooks/rollback.yml"
