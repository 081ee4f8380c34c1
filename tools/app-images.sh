#!/usr/bin/env bash
# Build the sample platform that webstack.deploy's demo and tests deploy:
#
#   api    webstack/sample-api:v1, :v2, :v3   Express API (apps/sample/api);
#                                             v3 is deliberately broken: it
#                                             starts, but /health answers 503
#   spa    apps/sample/spa/dist               Vite build, version in the page
#                                             and in dist/version.json
#   redis  webstack/redis:trixie              Debian's redis-server
#
# All images are built FROM webstack/node:trixie (tools/images.sh node; run
# here when it is missing). Node dependencies are installed on this machine
# with `npm ci` (the npm registry is reachable here); the image builds copy
# node_modules and never reach the registry themselves.
#
# Work whose inputs did not change is skipped: an image keeps the hash of its
# inputs in the label webstack.inputs, the SPA build in spa/.build-inputs.
#
# Usage: tools/app-images.sh [api|spa|redis ...]      (default: all three)
# Environment:
#   SAMPLE_API_VERSIONS  versions to build            (default "v1 v2 v3")
#   SAMPLE_API_BROKEN    versions built broken        (default "v3")
#   SAMPLE_SPA_VERSION   version shown by the SPA     (default: spa/package.json)
#   WEBSTACK_NODE_IMAGE  base image                   (default webstack/node:trixie)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAMPLE="$ROOT/apps/sample"
SELF="$ROOT/tools/app-images.sh"
BASE_IMAGE="${WEBSTACK_NODE_IMAGE:-webstack/node:trixie}"
API_REPO="webstack/sample-api"
REDIS_REF="webstack/redis:trixie"
API_VERSIONS="${SAMPLE_API_VERSIONS:-v1 v2 v3}"
API_BROKEN="${SAMPLE_API_BROKEN:-v3}"
# The engine here has no buildx: the classic builder, asked for explicitly.
export DOCKER_BUILDKIT=0

SUMMARY=()

say() { echo "app-images.sh: $*"; }
fail() {
  echo "app-images.sh: ERROR: $*" >&2
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sha() { sha256sum | cut -c1-16; }

# Hash of files and directory trees, names included, in a stable order.
hash_paths() {
  local base="$1"
  shift
  (
    cd "$base"
    find "$@" -type f ! -name '*.log' -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -c1-16
}

image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_size() {
  docker image inspect -f '{{ .Size }}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'
}

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed (needed for: $*)"
  done
}

ensure_base() {
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE is missing: building it with tools/images.sh node"
    "$ROOT/tools/images.sh" node || fail "could not build $BASE_IMAGE (tools/images.sh node)"
  fi
  BASE_ID="$(docker image inspect -f '{{ .Id }}' "$BASE_IMAGE")"
}

# npm ci into <dir>/node_modules unless the lockfile it was installed from is
# the same. $2: extra npm ci arguments.
npm_install() {
  local dir="$1" extra="${2:-}" want have log
  [ -f "$dir/package-lock.json" ] || fail "$dir/package-lock.json is missing: commit the lockfile"
  want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha)-$(node --version)-${extra// /}"
  have="$(cat "$dir/node_modules/.webstack-installed" 2>/dev/null || true)"
  if [ "$want" = "$have" ]; then
    return 0
  fi
  say "npm ci $extra in ${dir#"$ROOT"/}"
  log="$(mktemp)"
  # shellcheck disable=SC2086  # $extra holds separate npm arguments
  if ! (cd "$dir" && npm ci $extra --no-audit --no-fund --loglevel=warn) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    fail "npm ci failed in ${dir#"$ROOT"/} (npm registry reachable? lockfile in sync with package.json?)"
  fi
  rm -f "$log"
  echo "$want" >"$dir/node_modules/.webstack-installed"
}

docker_build() {
  local ref="$1" context="$2"
  shift 2
  local log start
  log="$(mktemp)"
  start="$(now)"
  if ! docker build --pull=false -t "$ref" "$@" "$context" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    fail "docker build of $ref failed (context ${context#"$ROOT"/})"
  fi
  rm -f "$log"
  SUMMARY+=("built $ref ($(image_size "$ref"), $(elapsed "$start") s)")
  say "built $ref ($(image_size "$ref"), $(elapsed "$start") s)"
}

build_api() {
  local dir="$SAMPLE/api" common v broken inputs installed=0
  common="$(printf '%s\n' "$(hash_paths "$ROOT" tools/app-images.sh)" \
    "$(hash_paths "$dir" Dockerfile .dockerignore package.json package-lock.json src)" "$BASE_ID" | sha)"
  for v in $API_VERSIONS; do
    broken=0
    [[ " $API_BROKEN " == *" $v "* ]] && broken=1
    inputs="$(printf '%s\n%s\n%s\n' "$common" "$v" "$broken" | sha)"
    if [ "$(image_label "$API_REPO:$v" webstack.inputs)" = "$inputs" ]; then
      SUMMARY+=("up to date $API_REPO:$v ($(image_size "$API_REPO:$v"))")
      say "$API_REPO:$v is up to date ($inputs)"
      continue
    fi
    if [ "$installed" = 0 ]; then
      npm_install "$dir" "--omit=dev"
      installed=1
    fi
    say "building $API_REPO:$v (broken=$broken, inputs $inputs)"
    docker_build "$API_REPO:$v" "$dir" \
      --build-arg "APP_VERSION=$v" --build-arg "APP_BROKEN=$broken" --build-arg "APP_INPUTS=$inputs"
    [ "$(image_label "$API_REPO:$v" org.opencontainers.image.version)" = "$v" ] ||
      fail "$API_REPO:$v was built without its version label"
  done
}

build_redis() {
  local inputs
  inputs="$(printf '%s\n%s\n%s\n' "$(hash_paths "$ROOT" tools/app-images.sh)" \
    "$(hash_paths "$SAMPLE/redis" Dockerfile)" "$BASE_ID" | sha)"
  if [ "$(image_label "$REDIS_REF" webstack.inputs)" = "$inputs" ]; then
    SUMMARY+=("up to date $REDIS_REF ($(image_size "$REDIS_REF"))")
    say "$REDIS_REF is up to date ($inputs)"
    return 0
  fi
  say "building $REDIS_REF (inputs $inputs; apt-get from the Debian mirror)"
  docker_build "$REDIS_REF" "$SAMPLE/redis" --build-arg "APP_INPUTS=$inputs"
}

build_spa() {
  local dir="$SAMPLE/spa" version inputs start
  version="${SAMPLE_SPA_VERSION:-$(node -p 'require(process.argv[1]).version' "$dir/package.json")}"
  inputs="$(printf '%s\n%s\n%s\n' "$(hash_paths "$ROOT" tools/app-images.sh)" \
    "$(hash_paths "$dir" package.json package-lock.json vite.config.js index.html src public)" "$version" | sha)"
  if [ -f "$dir/dist/index.html" ] && [ "$(cat "$dir/.build-inputs" 2>/dev/null || true)" = "$inputs" ]; then
    SUMMARY+=("up to date apps/sample/spa/dist (version $version)")
    say "apps/sample/spa/dist is up to date (version $version, inputs $inputs)"
    return 0
  fi
  start="$(now)"
  npm_install "$dir"
  say "building apps/sample/spa/dist (version $version)"
  local log
  log="$(mktemp)"
  rm -f "$dir/.build-inputs"
  if ! (cd "$dir" && VITE_APP_VERSION="$version" npm run build) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    fail "the SPA build (npm run build in apps/sample/spa) failed"
  fi
  rm -f "$log"
  grep -q "content=\"$version\"" "$dir/dist/index.html" ||
    fail "apps/sample/spa/dist/index.html does not show version $version"
  echo "$inputs" >"$dir/.build-inputs"
  local size
  size="$(du -sk "$dir/dist" | cut -f1)"
  SUMMARY+=("built apps/sample/spa/dist (version $version, $size kB, $(elapsed "$start") s)")
  say "built apps/sample/spa/dist (version $version, $size kB, $(elapsed "$start") s)"
}

targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(api spa redis)
for t in "${targets[@]}"; do
  case "$t" in
    api | spa | redis) ;;
    *) fail "unknown target '$t' (expected api, spa or redis)" ;;
  esac
done

[ -n "${API_VERSIONS// /}" ] || fail "SAMPLE_API_VERSIONS is empty"
for v in $API_VERSIONS; do
  [[ "$v" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "'$v' in SAMPLE_API_VERSIONS is not a valid image tag"
done
for v in $API_BROKEN; do
  [[ " $API_VERSIONS " == *" $v "* ]] || fail "'$v' in SAMPLE_API_BROKEN is not one of SAMPLE_API_VERSIONS ($API_VERSIONS)"
done

require_tools docker node npm sha256sum flock
docker info >/dev/null 2>&1 || fail "the Docker engine does not answer (docker info failed)"

# One build at a time (the demo and a test run may start this together).
exec 9>"${TMPDIR:-/tmp}/webstack-app-images.lock"
flock 9

for t in "${targets[@]}"; do
  case "$t" in
    api)
      ensure_base
      build_api
      ;;
    redis)
      ensure_base
      build_redis
      ;;
    spa) build_spa ;;
  esac
done

say "summary:"
for line in "${SUMMARY[@]}"; do
  echo "  $line"
done
