#!/usr/bin/env bash
# The test suite, stage by stage:
#   tools/test.sh [all|lint|sanity|node|pytest|molecule|molecule:<scenario>|e2e|aws-boot ...]
# `all` is every stage; aws-boot (an Auto Scaling instance's user data
# converging a host container booted from the golden image that
# `tools/images.sh awsboot` bakes) needs the Debian mirror from inside a
# container.
# `make test` runs tools/bootstrap.sh first, then `tools/test.sh all`.
#
# Stages run side by side: the static checks and pytest one after another in
# one lane, Molecule scenarios in a bounded pool beside them (they mostly wait
# on systemd, apt and health checks). Each stage writes its own log, printed
# whole when the stage ends; a failed stage is named with its log's tail at
# the end, the others still run, and the suite exits non-zero. The timing
# table comes last.
#
# Settings (environment):
#   WEBSTACK_TEST_JOBS        Molecule scenarios at a time (default 3)
#   WEBSTACK_TEST_HEAVY_JOBS  of those, scenarios whose host runs its own
#                             dockerd (HEAVY below, and e2e) at a time (default 2)
#   WEBSTACK_TEST_CHECK_JOBS  static/pytest stages at a time (default 1)
#   WEBSTACK_PYTEST_WORKERS   pytest-xdist workers, 0 = none (default 2)
#   WEBSTACK_TEST_PRINT       all: print every log; failed: only failed ones
#   WEBSTACK_RUN_ID           prefix of the containers, networks and volumes
#                             of this run's scenarios (default: unique per run)
#   WEBSTACK_TEST_LOGS        directory for the logs (default: a new temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1

# The scenarios `make test` runs, longest first (the pool starts them in this
# order, which keeps the suite's wall time short). Add a scenario here.
SCENARIOS=(nginx bluegreen backup logs mongodb firewall base redis docker)
# Scenarios whose host container runs its own dockerd and loads the sample
# app's images: memory- and CPU-hungry, and they need tools/app-images.sh.
HEAVY=(docker bluegreen)
# Ports a scenario publishes on this machine come from these variables; each
# run picks free ones (a scenario's own default applies when run by hand).
PORT_VARS=(WEBSTACK_BLUEGREEN_HTTPS_PORT WEBSTACK_TEST_MOTO_PORT WEBSTACK_TEST_BACKUP_MOTO_PORT)

JOBS=${WEBSTACK_TEST_JOBS:-3}
HEAVY_JOBS=${WEBSTACK_TEST_HEAVY_JOBS:-2}
CHECK_JOBS=${WEBSTACK_TEST_CHECK_JOBS:-1}
PYTEST_WORKERS=${WEBSTACK_PYTEST_WORKERS:-2}
PRINT=${WEBSTACK_TEST_PRINT:-all}
# Short, unique per run, valid in container and host names.
export WEBSTACK_RUN_ID="${WEBSTACK_RUN_ID:-t$(date -u +%H%M%S)$$}"
LOGS=${WEBSTACK_TEST_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/webstack-test-$WEBSTACK_RUN_ID.XXXX")}
mkdir -p "$LOGS"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for var in "${PORT_VARS[@]}"; do
  [ -n "${!var:-}" ] || export "$var=$(free_port)"
done

stage() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

# ---- the stages (each runs in its own process, output to its log) ----

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
  # Integration tests start their own moto server and registry on free ports
  # per session, so xdist workers (whole files each) never share one.
  local xdist=()
  [ "$PYTEST_WORKERS" -gt 0 ] && xdist=(-n "$PYTEST_WORKERS" --dist loadfile)
  # tests/e2e is its own stage (the local fleet, below).
  pytest -q --durations=15 "${xdist[@]}" tests/unit tests/integration
}

e2e_tests() {
  stage "end to end: site.yml, logs, deploy, rollback, backup and restore on a local fleet of its own"
  pytest -q -s --durations=0 tests/e2e
}

aws_boot() {
  stage "an Auto Scaling instance's user data converging a fresh host (golden image)"
  WEBSTACK_TEST_AWS_BOOT=1 pytest -q -s tests/integration/test_aws_boot.py
}

app_images() {
  stage "tools/app-images.sh"
  tools/app-images.sh
}

scenario() {
  stage "molecule test -s $1 (run $WEBSTACK_RUN_ID)"
  # Instance state, inventory and logs of this run only: two runs of the same
  # checkout never share them.
  MOLECULE_EPHEMERAL_DIRECTORY="$LOGS/molecule-$1.state" molecule test -s "$1"
}

# ---- a small job pool ----

declare -a queue=()
declare -A cmd=() class=() after=() state=() started=() took=() pid_job=()
declare -A limit=([check]=$CHECK_JOBS [molecule]=$JOBS [heavy]=$HEAVY_JOBS)
failed=()
t0=$SECONDS

add() { # add <name> <class> <after: job it needs, ~job it only follows, or -> <command...>
  local name=$1
  [ -n "${cmd[$name]:-}" ] && return 0
  queue+=("$name")
  class[$name]=$2
  after[$name]=$3
  shift 3
  cmd[$name]="$*"
  state[$name]=pending
}

add_scenario() {
  # Scenarios come after the app images when those are queued (`all`): by
  # then the end-to-end and boot stages, queued before them, take the first
  # free slots instead of waiting for a scenario to end.
  local s=$1 c=molecule dep=~app-images h
  [ -f "molecule/$s/molecule.yml" ] || {
    echo "test.sh: no scenario molecule/$s" >&2
    exit 2
  }
  for h in "${HEAVY[@]}"; do
    if [ "$h" = "$s" ]; then
      c=heavy
      dep=app-images
      add app-images check - app_images
    fi
  done
  add "molecule-$s" "$c" "$dep" scenario "$s"
}

running_in() { # running_in <class>: jobs of that class running (heavy counts as molecule too)
  local n=0 j
  for j in "${queue[@]}"; do
    [ "${state[$j]}" = running ] || continue
    if [ "${class[$j]}" = "$1" ] || { [ "$1" = molecule ] && [ "${class[$j]}" = heavy ]; }; then
      n=$((n + 1))
    fi
  done
  echo "$n"
}

start_ready() {
  local j c dep
  for j in "${queue[@]}"; do
    [ "${state[$j]}" = pending ] || continue
    # A job waits for the one it comes after only when that one is queued;
    # "~job" only orders, "job" also needs it to have passed.
    dep=${after[$j]#\~}
    if [ "$dep" != - ] && [ -n "${state[$dep]:-}" ]; then
      case "${state[$dep]}" in
        ok) ;;
        failed | skipped)
          if [ "$dep" = "${after[$j]}" ]; then
            state[$j]=skipped
            failed+=("$j")
            echo "test.sh: $j skipped: $dep failed" >"$LOGS/$j.log"
            continue
          fi
          ;;
        *) continue ;;
      esac
    fi
    c=${class[$j]}
    [ "$(running_in "$c")" -lt "${limit[$c]}" ] || continue
    if [ "$c" = heavy ] && [ "$(running_in molecule)" -ge "${limit[molecule]}" ]; then continue; fi
    # shellcheck disable=SC2086  # commands are a function name and plain words
    (${cmd[$j]}) >"$LOGS/$j.log" 2>&1 </dev/null &
    pid_job[$!]=$j
    state[$j]=running
    started[$j]=$((SECONDS - t0))
    printf 'test.sh: %-22s started  (+%ss, log %s)\n' "$j" "${started[$j]}" "$LOGS/$j.log"
  done
}

finish() { # finish <pid> <exit status>
  local j=${pid_job[$1]}
  unset "pid_job[$1]"
  took[$j]=$((SECONDS - t0 - started[$j]))
  if [ "$2" -eq 0 ]; then state[$j]=ok; else
    state[$j]=failed
    failed+=("$j")
  fi
  if [ "$PRINT" = all ] || [ "$2" -ne 0 ]; then
    printf '\n######## %s: %s (%ss) - %s\n' "$j" "${state[$j]}" "${took[$j]}" "$LOGS/$j.log"
    cat "$LOGS/$j.log"
  fi
  printf 'test.sh: %-22s %-7s  (%ss)\n' "$j" "${state[$j]}" "${took[$j]}"
}

run_pool() {
  local pid status
  while :; do
    start_ready
    [ "${#pid_job[@]}" -gt 0 ] || break
    status=0
    wait -n -p pid "${!pid_job[@]}" || status=$?
    finish "$pid" "$status"
  done
}

# ---- what to run ----

what=("$@")
[ "${#what[@]}" -eq 0 ] && what=(all)
for w in "${what[@]}"; do
  case "$w" in
    all)
      # The app images first: Docker-host scenarios wait for them, and
      # tools/app-images.sh, the node stage and pytest's sample-app tests
      # share apps/sample/api/node_modules, so they never run together.
      add app-images check - app_images
      add node check ~app-images node_tests
      add lint check - lint
      add sanity check - sanity
      add pytest check ~app-images pytests
      # The longest stage: first to take a free slot once the images are built.
      add e2e heavy app-images e2e_tests
      # Its host runs its own dockerd and loads the sample app's image.
      add aws-boot heavy app-images aws_boot
      for s in "${SCENARIOS[@]}"; do add_scenario "$s"; done
      ;;
    lint) add lint check - lint ;;
    sanity) add sanity check - sanity ;;
    node) add node check ~app-images node_tests ;;
    pytest) add pytest check ~app-images pytests ;;
    molecule) for s in "${SCENARIOS[@]}"; do add_scenario "$s"; done ;;
    molecule:*) add_scenario "${w#molecule:}" ;;
    e2e)
      add app-images check - app_images
      add e2e heavy app-images e2e_tests
      ;;
    aws-boot) add aws-boot check - aws_boot ;;
    *)
      echo "test.sh: unknown stage '$w' (all, lint, sanity, node, pytest, molecule, molecule:<scenario>, e2e, aws-boot)" >&2
      exit 2
      ;;
  esac
done

echo "test.sh: run $WEBSTACK_RUN_ID, logs in $LOGS; at a time: $JOBS scenarios" \
  "($HEAVY_JOBS with a nested Docker engine), $CHECK_JOBS check stage(s)"
run_pool

stage "timings (seconds from the start)"
printf '%-24s %6s %6s %6s  %s\n' stage took start end result
for j in "${queue[@]}"; do
  [ -n "${took[$j]:-}" ] || took[$j]=0
  printf '%-24s %6s %6s %6s  %s\n' "$j" "${took[$j]}" "${started[$j]:--}" \
    "$((${started[$j]:-0} + took[$j]))" "${state[$j]}"
done
printf '%-24s %6s\n' total $((SECONDS - t0))
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${#failed[@]}" -gt 0 ]; then
  for j in "${failed[@]}"; do
    printf '\n######## FAILED: %s - log %s (last 40 lines)\n' "$j" "$LOGS/$j.log"
    tail -n 40 "$LOGS/$j.log"
  done
  # What failed, last: a CI page that keeps only the end of the output
  # still names the task or test (Ansible's fatal/failed lines and the
  # message after them, pytest's failure summary).
  for j in "${failed[@]}"; do
    printf '\n######## FAILURES IN: %s\n' "$j"
    grep -n -E -A12 '^(fatal|failed): \[|^FAILED |^ERROR |^E  ' "$LOGS/$j.log" | cut -c1-400 | tail -n 80 || true
  done
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
