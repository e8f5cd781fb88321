#!/usr/bin/env bash
# Refresh-token load test (issue acceptance 7): refresh exchanges per second
# and p50/p99 latency against `tessera serve` on 127.0.0.1 with SQLite,
# N concurrent sessions each refreshing in a loop.
#
#   bench/refresh-load.sh [--no-build] [--bin-dir DIR] [--store-url postgres://...]
#                         [--instances N] [refresh_load options]
#
# With --store-url (an empty PostgreSQL database) and --instances N, N
# servers share that store and the load client spreads refreshes over them.
#
# Builds the release binaries (unless --no-build), starts the server with
# default settings except rate limits, which are off (every TESSERA_* variable and RUST_LOG of the caller is
# ignored) on 127.0.0.1 with a temporary data directory and a fresh master
# key, registers a backend and a public client with the same binary's CLI,
# runs `refresh_load` (defaults: --sessions 64 --duration-secs 20
# --warmup-secs 3 --threads 1; other options are passed through), then stops
# the server and removes the data directory. The last line of output is the
# JSON report; the exit status is refresh_load's (0: every refresh succeeded).
#
# Goal on the 2-core reference machine: >= 8,000 refreshes/s with p99 <= 20 ms.
# Do not run it while something else is compiling: the numbers would be noise.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
bin_dir="${CARGO_TARGET_DIR:-target}/release"
load_args=()
store_url=""
instances=1
while (($#)); do
  case "$1" in
    --store-url) store_url="$2"; shift 2 ;;
    --instances) instances="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin-dir)
      [[ $# -ge 2 ]] || { echo "refresh-load: --bin-dir needs a directory" >&2; exit 2; }
      bin_dir="$2"; build=0; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) load_args+=("$1"); shift ;;
  esac
done

if ((build)); then
  cargo build --release -p tessera -p tessera-e2e --bins
fi
tessera="$bin_dir/tessera"
load="$bin_dir/refresh_load"
for bin in "$tessera" "$load"; do
  [[ -x "$bin" ]] || { echo "refresh-load: $bin not found (build it, or pass --bin-dir)" >&2; exit 2; }
done

# Default settings: nothing from the caller's environment, except
# REFRESH_LOAD_RUST_LOG, which becomes the server's RUST_LOG (e.g.
# "info,tessera::access=off" to measure without the access log).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TESSERA_' || true)
unset RUST_LOG
[[ -n "${REFRESH_LOAD_RUST_LOG:-}" ]] && export RUST_LOG="$REFRESH_LOAD_RUST_LOG"

data_dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-refresh-load.XXXXXX")"
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf -- "$data_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 32 random bytes, base64url without padding.
master_key="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
export TESSERA_DATA_DIR="$data_dir" TESSERA_LISTEN="127.0.0.1:0" TESSERA_MASTER_KEY="$master_key"
# The load client is one IP refreshing far faster than any real client: the
# per-IP rate limit (on by default) would answer 429s, not measure refresh.
export TESSERA_RATE_LIMITS__ENABLED=false
[[ -n "$store_url" ]] && export TESSERA_STORE_URL="$store_url"

start_server() { # $1: index; prints the address
  "$tessera" serve >"$data_dir/serve$1.out" 2>"$data_dir/serve$1.log" &
  server_pids+=($!)
  local addr=""
  for _ in $(seq 200); do
    addr="$(sed -n 's/^listening on //p' "$data_dir/serve$1.out" | head -n 1)"
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  if [[ -z "$addr" ]]; then
    echo "refresh-load: tessera serve did not start; its log:" >&2
    cat "$data_dir/serve$1.log" >&2
    exit 1
  fi
  server_addrs+=("$addr")
}
server_addrs=()
for i in $(seq "$instances"); do start_server "$i"; done
issuer="http://${server_addrs[0]}"
for addr in "${server_addrs[@]:1}"; do load_args+=(--also "http://$addr"); done

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
public="$("$tessera" clients create --name load-app --kind public --allow refresh_token --audiences api --scopes read --json 2>/dev/null)"
client_id="$(json_field client_id <<<"$public")"
backend="$("$tessera" clients create --name load-backend --kind confidential --allow sessions,introspect --sessions-for "$client_id" --json 2>/dev/null)"
backend_id="$(json_field client_id <<<"$backend")"
backend_secret="$(json_field client_secret <<<"$backend")"
if [[ -z "$backend_id" || -z "$backend_secret" || -z "$client_id" ]]; then
  echo "refresh-load: could not register the clients" >&2
  exit 1
fi

echo "# tessera $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, $instances instance(s) ${server_addrs[*]}, store $([[ -n "$store_url" ]] && echo PostgreSQL || echo SQLite), binaries from $bin_dir"
status=0
"$load" --issuer "$issuer" --backend-id "$backend_id" --backend-secret "$backend_secret" \
  --client-id "$client_id" "${load_args[@]}" || status=$?
if ((status != 0)); then
  echo "refresh-load: refresh_load exited $status; last server log lines:" >&2
  tail -n 20 "$data_dir/serve1.log" >&2
fi
exit "$status"
