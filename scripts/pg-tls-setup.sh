#!/usr/bin/env bash
# Test setup: gives the local PostgreSQL (127.0.0.1:5432, trust auth for
# user postgres) a server certificate from a throwaway CA, so tests can
# check `sslmode=verify-full` with `sslrootcert`. Prints the CA file's path.
# Usage: scripts/pg-tls-setup.sh [DIR]   (default: a directory PostgreSQL can read)
# Needs root (to hand the key to the postgres user) and openssl.
set -euo pipefail
dir="${1:-/var/lib/postgresql/tessera-test-tls}"
mkdir -p "$dir"
cd "$dir"
if [ ! -s ca.crt ] || [ ! -s server.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=Tessera test CA" -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.crt 2>/dev/null
fi
chown postgres:postgres server.key server.crt 2>/dev/null || true
chmod 600 server.key
chmod 644 ca.crt server.crt
psql -h 127.0.0.1 -U postgres -d postgres -qAt \
  -c "ALTER SYSTEM SET ssl = on" \
  -c "ALTER SYSTEM SET ssl_cert_file = '$dir/server.crt'" \
  -c "ALTER SYSTEM SET ssl_key_file = '$dir/server.key'" \
  -c "SELECT pg_reload_conf()" >/dev/null
echo "$dir/ca.crt"
