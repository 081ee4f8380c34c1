#!/usr/bin/env bash
# The main job on the local fleet: host containers up, the whole platform
# converged with site.yml, then a second run that must report no change.
# `make demo` runs tools/bootstrap.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
INVENTORY=inventories/local

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
echo "==> done: the local fleet is converged"
