#!/usr/bin/env bash
# The test suite, stage by stage:  tools/test.sh [all|lint|sanity|pytest|molecule ...]
# `make test` runs tools/bootstrap.sh first, then `tools/test.sh all`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1

stage() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
declare -A took

lint() {
  stage "yamllint"
  yamllint --strict .
  stage "ruff"
  ruff check .
  ruff format --check .
  stage "ansible-lint (production profile)"
  ansible-lint --offline -q
}

sanity() {
  stage "ansible-test sanity"
  # ansible-test needs the collection under ansible_collections/<ns>/<name>.
  local root
  root=$(mktemp -d)
  mkdir -p "$root/ansible_collections/webstack"
  git ls-files -z --cached --others --exclude-standard | grep -zvE '^(\.collections|apps|bench)/' |
    rsync -a --from0 --files-from=- ./ "$root/ansible_collections/webstack/deploy/"
  # The collections this one depends on, beside it, from the ansible package.
  local site ns
  site=$(python -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
  for ns in "$site"/*/; do
    [ "$(basename "$ns")" = webstack ] || ln -s "$ns" "$root/ansible_collections/$(basename "$ns")"
  done
  local pip_version
  # The pip version ansible-test bootstraps into its venvs (default_packages).
  pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',$/\1/p" \
    "$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -n1)
  mkdir -p ~/.ansible/test/cache
  cp tools/get_pip_standin.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
  # pylint and pep8 overlap ruff, which runs in the lint stage.
  (cd "$root/ansible_collections/webstack/deploy" &&
    ansible-test sanity --color no --python 3.11 --venv --skip-test pylint --skip-test pep8)
  rm -rf "$root"
}

node_tests() {
  stage "node --test (sample API)"
  (cd apps/sample/api && npm ci --omit=dev --no-audit --no-fund --loglevel=error && node --test test/)
}

pytests() {
  stage "pytest"
  pytest -q tests
}

# The scenarios `make test` runs, cheap ones first; docker and bluegreen use a
# Docker host with its own engine (bluegreen releases under load).
SCENARIOS=(base firewall nginx docker bluegreen)

molecules() {
  local scenarios=("$@")
  [ "${#scenarios[@]}" -eq 0 ] && scenarios=("${SCENARIOS[@]}")
  # Scenarios with Docker hosts load the sample app's images from this engine.
  tools/app-images.sh
  for s in "${scenarios[@]}"; do
    stage "molecule test -s $s"
    local start=$SECONDS
    molecule test -s "$s"
    took[molecule-$s]=$((SECONDS - start))
  done
}

run() {
  local start=$SECONDS
  "$@"
  took[$1]=$((SECONDS - start))
}

what=("$@")
[ "${#what[@]}" -eq 0 ] && what=(all)
total_start=$SECONDS
for w in "${what[@]}"; do
  case "$w" in
    all) run lint; run sanity; run node_tests; run pytests; run molecules ;;
    lint) run lint ;;
    sanity) run sanity ;;
    node) run node_tests ;;
    pytest) run pytests ;;
    molecule) run molecules ;;
    molecule:*) run molecules "${w#molecule:}" ;;
    *) echo "test.sh: unknown stage '$w' (all, lint, sanity, node, pytest, molecule, molecule:<scenario>)" >&2; exit 2 ;;
  esac
done
stage "timings"
for k in "${!took[@]}"; do printf '%-28s %5ss\n' "$k" "${took[$k]}"; done | sort
printf '%-28s %5ss\n' total $((SECONDS - total_start))
