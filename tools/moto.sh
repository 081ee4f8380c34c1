#!/usr/bin/env bash
# A moto server (the AWS APIs, S3 included) in the background, for Molecule
# scenarios and the local platform:
#   tools/moto.sh start ADDRESS PORT DIR   start unless something answers there already;
#                                          pid in DIR/moto.pid, log in DIR/moto.log
#   tools/moto.sh stop DIR                 stop the server DIR/moto.pid names
# It runs `python -m moto.server` from the project's venv, as
# tests/integration/conftest.py does. ADDRESS is where clients reach it: a
# container reaches this machine at its Docker network's gateway address.
# moto keeps everything in memory: a stopped server forgets its buckets.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3

case "${1:-}" in
  start)
    [ $# -eq 4 ] || { echo "usage: $0 start ADDRESS PORT DIR" >&2; exit 2; }
    address=$2 port=$3 dir=$4
    url="http://$address:$port/moto-api/"
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then
      echo "moto.sh: a server answers at $url already"
      exit 0
    fi
    mkdir -p "$dir"
    nohup "$python" -m moto.server -H "$address" -p "$port" >"$dir/moto.log" 2>&1 &
    echo $! >"$dir/moto.pid"
    for _ in $(seq 1 60); do
      if curl -fsS -o /dev/null "$url" 2>/dev/null; then
        echo "moto.sh: started pid $(cat "$dir/moto.pid") at http://$address:$port"
        exit 0
      fi
      kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null || break
      sleep 0.5
    done
    echo "moto.sh: no answer at $url; log:" >&2
    tail -n 20 "$dir/moto.log" >&2
    exit 1
    ;;
  stop)
    [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    pidfile="$2/moto.pid"
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
      echo "moto.sh: stopped"
    fi
    ;;
  *)
    echo "usage: $0 start ADDRESS PORT DIR | stop DIR" >&2
    exit 2
    ;;
esac
