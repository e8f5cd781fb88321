#!/usr/bin/env bash
# Refresh exchanges per second, Tessera (SQLite) against node-oidc-provider
# with refresh-token rotation, driven by the SAME closed-loop load client
# (the peer kit's oidc/load.mjs: 64 concurrent refreshers, confidential
# client with HTTP Basic), interleaved run by run on this machine.
#
#   bench/refresh-vs-oidc-provider.sh PEERS_DIR [--runs N] [--duration S] [--no-build]
#
# PEERS_DIR is a copy of the bench-peer kit (node-oidc-provider and a Node
# jose resource server) with `npm install` done in it. The kit is not part of
# this repository, and neither this script nor the peers run in the tests or
# CI. Prints one JSON line per run and a last line with the medians and the
# ratio. Do not run it while something else is compiling.
set -euo pipefail
cd "$(dirname "$0")/.."

peers="${1:?usage: bench/refresh-vs-oidc-provider.sh PEERS_DIR [--runs N] [--duration S] [--no-build]}"
shift
runs=3
duration=8
build=1
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "refresh-vs-oidc-provider: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f "$peers/oidc/load.mjs" && -d "$peers/node_modules" ]] || {
  echo "refresh-vs-oidc-provider: $peers needs oidc/load.mjs and node_modules (npm install there)" >&2
  exit 2
}
((build)) && cargo build --release -p tessera
tessera="${CARGO_TARGET_DIR:-target}/release/tessera"
peers="$(cd "$peers" && pwd)"

while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TESSERA_' || true)
unset RUST_LOG
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-vs-oidc.XXXXXX")"
tessera_pid=""
cleanup() {
  [[ -n "$tessera_pid" ]] && kill "$tessera_pid" 2>/dev/null || true
  bash "$peers/oidc/stop.sh" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

# A fresh Tessera with 64 sessions of a confidential client, as seed.json.
tessera_run() {
  local dir="$work/tessera-$1"
  mkdir -p "$dir"
  local master
  master="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  TESSERA_DATA_DIR="$dir/data" TESSERA_LISTEN=127.0.0.1:0 TESSERA_RATE_LIMITS__ENABLED=false \
    TESSERA_MASTER_KEY="$master" "$tessera" serve >"$dir/serve.out" 2>"$dir/serve.log" &
  tessera_pid=$!
  local addr=""
  for _ in $(seq 100); do
    addr="$(sed -n 's/^listening on //p' "$dir/serve.out" | head -n 1)"
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  [[ -n "$addr" ]] || { cat "$dir/serve.log" >&2; exit 1; }
  # The CLI works on the same store with the same master key.
  local cli=(env TESSERA_DATA_DIR="$dir/data" TESSERA_MASTER_KEY="$master")
  local app backend
  app="$("${cli[@]}" "$tessera" clients create --name app --kind confidential --allow refresh_token --audiences api --json 2>/dev/null)"
  backend="$("${cli[@]}" "$tessera" clients create --name backend --kind confidential --allow sessions --sessions-for "$(json client_id <<<"$app")" --json 2>/dev/null)"
  python3 - "$addr" "$app" "$backend" "$dir/seed.json" <<'PY'
import base64, json, sys, urllib.request
addr, app, backend, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
auth = "Basic " + base64.b64encode(f"{backend['client_id']}:{backend['client_secret']}".encode()).decode()
tokens = []
for i in range(64):
    body = json.dumps({"subject": f"bench-{i}", "client_id": app["client_id"], "audience": ["api"]}).encode()
    req = urllib.request.Request(f"http://{addr}/v1/sessions", data=body, method="POST",
                                 headers={"content-type": "application/json", "authorization": auth})
    tokens.append(json.load(urllib.request.urlopen(req))["refresh_token"])
json.dump({"client_id": app["client_id"], "client_secret": app["client_secret"], "refresh_tokens": tokens}, open(out, "w"))
PY
  node "$peers/oidc/load.mjs" --url "http://$addr" --seed-file "$dir/seed.json" \
    --token-path /oauth/token --conc 64 --duration "$duration" --warmup 2 | tail -n 1
  kill "$tessera_pid" 2>/dev/null || true
  wait "$tessera_pid" 2>/dev/null || true
  tessera_pid=""
}

oidc_run() {
  bash "$peers/oidc/start.sh" >/dev/null 2>&1
  DURATION="$duration" bash "$peers/oidc/load.sh" 2>/dev/null | tail -n 1
  bash "$peers/oidc/stop.sh" >/dev/null 2>&1
}

results="$work/results.jsonl"
for i in $(seq "$runs"); do
  echo "{\"peer\":\"tessera\",\"run\":$i,\"r\":$(tessera_run "$i")}" | tee -a "$results"
  echo "{\"peer\":\"oidc-provider\",\"run\":$i,\"r\":$(oidc_run)}" | tee -a "$results"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(peer, key):
    return statistics.median(r["r"][key] for r in rows if r["peer"] == peer)
t, o = med("tessera", "refreshes_per_s"), med("oidc-provider", "refreshes_per_s")
print(json.dumps({"tessera_refreshes_per_s": t, "oidc_provider_refreshes_per_s": o,
                  "ratio": round(t / o, 2), "tessera_p99_ms": med("tessera", "p99_ms"),
                  "oidc_provider_p99_ms": med("oidc-provider", "p99_ms")}))
PY
