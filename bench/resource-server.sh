#!/usr/bin/env bash
# Verified GET /me per second at the example resource server, under wrk,
# with a repeated valid token (the common case: a client reuses its access
# token until it expires).
#
#   bench/resource-server.sh [--no-build] [--token-cache N] [--duration S]
#                            [--connections C] [--server-cpus LIST] [--client-cpus LIST]
#
# Builds the release `tessera` and the example `resource_server` (unless
# --no-build), starts `tessera serve` on 127.0.0.1 with a temporary data
# directory (rate limits off), opens one session, starts the example server
# against it (following the revocation feed, as deployed) pinned to
# --server-cpus (default 0), and runs wrk pinned to --client-cpus (default 1)
# with 1 thread and C connections (default 64) for S seconds (default 10).
# Prints wrk's summary and a last JSON line {"requests_per_sec", "token_cache",
# "non_2xx"}. --token-cache 0 measures full verification on every request.
#
# For the ratio to a Node `jose` resource server, run the peer from a copy of
# the bench peers (node-oidc-provider / jose, not part of this repository) in
# the same session with the same pinning, and compare the two requests/s.
# Do not run it while something else is compiling: the numbers would be noise.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
token_cache=10000
duration=10
connections=64
server_cpus=0
client_cpus=1
while (($#)); do
  case "$1" in
    --no-build) build=0; shift ;;
    --token-cache) token_cache="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --server-cpus) server_cpus="$2"; shift 2 ;;
    --client-cpus) client_cpus="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "resource-server: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "resource-server: needs wrk (apt-get install wrk)" >&2; exit 2; }
if ((build)); then
  cargo build --release -p tessera
  cargo build --release -p tessera-verifier --features axum,remote --example resource_server
fi
bin="${CARGO_TARGET_DIR:-target}/release"
tessera="$bin/tessera"
rs="$bin/examples/resource_server"

while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TESSERA_' || true)
unset RUST_LOG
data_dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-rs-bench.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

export TESSERA_DATA_DIR="$data_dir" TESSERA_LISTEN="127.0.0.1:0" TESSERA_RATE_LIMITS__ENABLED=false
TESSERA_MASTER_KEY="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
export TESSERA_MASTER_KEY
"$tessera" serve >"$data_dir/serve.out" 2>"$data_dir/serve.log" &
pids+=($!)
for _ in $(seq 100); do
  addr="$(sed -n 's/^listening on //p' "$data_dir/serve.out" | head -n 1)"
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "${addr:-}" ]] || { echo "resource-server: tessera serve did not start" >&2; cat "$data_dir/serve.log" >&2; exit 1; }
issuer="http://$addr"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
app="$("$tessera" clients create --name bench-app --kind public --allow refresh_token --audiences api --json 2>/dev/null)"
app_id="$(json client_id <<<"$app")"
backend="$("$tessera" clients create --name bench-backend --kind confidential --allow sessions --sessions-for "$app_id" --json 2>/dev/null)"
backend_id="$(json client_id <<<"$backend")"
backend_secret="$(json client_secret <<<"$backend")"
opened="$(curl -sf -u "$backend_id:$backend_secret" -H 'content-type: application/json' \
  -d "{\"subject\":\"bench\",\"client_id\":\"$app_id\",\"audience\":[\"api\"]}" "$issuer/v1/sessions")"
token="$(json access_token <<<"$opened")"

taskset -c "$server_cpus" "$rs" --issuer "$issuer" --audience api --listen 127.0.0.1:0 \
  --token-cache "$token_cache" >"$data_dir/rs.out" 2>"$data_dir/rs.log" &
pids+=($!)
for _ in $(seq 100); do
  rs_addr="$(sed -n 's/^listening on //p' "$data_dir/rs.out" | head -n 1)"
  [[ -n "$rs_addr" ]] && break
  sleep 0.1
done
[[ -n "${rs_addr:-}" ]] || { echo "resource-server: the example server did not start" >&2; cat "$data_dir/rs.log" >&2; exit 1; }
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$rs_addr/me")"
[[ "$status" == 200 ]] || { echo "resource-server: GET /me answered $status" >&2; exit 1; }

echo "# tessera $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, server on CPUs $server_cpus, wrk on CPUs $client_cpus, token cache $token_cache"
out="$(taskset -c "$client_cpus" wrk -t1 -c"$connections" -d"${duration}s" \
  -H "Authorization: Bearer $token" "http://$rs_addr/me")"
echo "$out"
rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
echo "{\"requests_per_sec\":${rps:-0},\"token_cache\":$token_cache,\"non_2xx\":${non2xx:-0}}"
