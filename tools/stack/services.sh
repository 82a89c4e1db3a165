#!/usr/bin/env bash
# Start or stop Aperture's own services as background processes: the coordinator/API and one worker per
# built stage (each worker's health and metrics on its own port). Logs go to var/log/<service>.log, pids
# to var/run/<service>.pid.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.venv/bin"
run_dir="$root/var/run"
log_dir="$root/var/log"
mkdir -p "$run_dir" "$log_dir"

# name | command | health URL
declare -A http_port=([ingest]=9101 [calibration]=9102 [findcont]=9103 [imaging]=9104 [previews]=9105 [footprint]=9106
  [export]=9107)
services=("coordinator|$bin/aperture-coordinator serve|http://127.0.0.1:${APERTURE_API_PORT:-8000}/readyz")
for stage in ingest calibration findcont imaging previews footprint export; do
  services+=("$stage|$bin/aperture-$stage|http://127.0.0.1:${http_port[$stage]}/readyz")
done

running() { [[ -f "$run_dir/$1.pid" ]] && kill -0 "$(cat "$run_dir/$1.pid")" 2>/dev/null; }

wait_healthy() { # name url
  local deadline=$((SECONDS + 90))
  until curl -fsS -o /dev/null "$2" 2>/dev/null; do
    if ! running "$1"; then
      echo "$1 exited while starting; the end of var/log/$1.log:" >&2
      tail -n 40 "$log_dir/$1.log" >&2
      return 1
    fi
    if (( SECONDS > deadline )); then
      echo "$1 did not become healthy at $2 within 90 s; the end of var/log/$1.log:" >&2
      tail -n 40 "$log_dir/$1.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

start() {
  for entry in "${services[@]}"; do
    IFS='|' read -r name command url <<<"$entry"
    if running "$name"; then
      echo "$name: already running (pid $(cat "$run_dir/$name.pid"))"
      continue
    fi
    # setsid: each service leads its own process group, so `stop` ends it with its CASA children.
    APERTURE_HTTP_PORT="${http_port[$name]:-0}" APERTURE_LOG_JSON="${APERTURE_LOG_JSON:-true}" \
      setsid $command >>"$log_dir/$name.log" 2>&1 < /dev/null &
    echo $! >"$run_dir/$name.pid"
  done
  for entry in "${services[@]}"; do
    IFS='|' read -r name command url <<<"$entry"
    wait_healthy "$name" "$url"
    echo "$name: healthy ($url, log var/log/$name.log)"
  done
}

stop() {
  for entry in "${services[@]}"; do
    IFS='|' read -r name _ _ <<<"$entry"
    if running "$name"; then
      pid=$(cat "$run_dir/$name.pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "$name: stopped"
    fi
    rm -f "$run_dir/$name.pid"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) for entry in "${services[@]}"; do IFS='|' read -r n _ u <<<"$entry"; running "$n" && echo "$n: running" || echo "$n: stopped"; done ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
