// A resource server protected by tessera-auth.mjs.
//
//   node server.mjs --issuer http://127.0.0.1:8080 --audience api --listen 127.0.0.1:9090
//
// `GET /me` answers the verified claims as JSON; a missing, invalid or
// revoked token earns a 401 with an RFC 6750 `WWW-Authenticate` challenge,
// and stale revocation data a 503 (unless --fail-open). `GET /healthz`: 200.
// Prints `listening on HOST:PORT` on stdout once discovery, the JWKS and the
// revocation stream are in place; logs go to stderr.

import http from 'node:http';
import { parseArgs } from 'node:util';

import { createTesseraAuth } from './tessera-auth.mjs';

const USAGE = `usage: node server.mjs --issuer URL --audience AUDIENCE [--listen HOST:PORT]
                      [--max-staleness SECONDS] [--fail-open] [--allow-insecure-http]`;

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        issuer: { type: 'string' },
        audience: { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:9090' },
        'max-staleness': { type: 'string', default: '30' },
        'fail-open': { type: 'boolean', default: false },
        'allow-insecure-http': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    usageError(error.message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.issuer || !values.audience) usageError('--issuer and --audience are required');
  const maxStaleness = Number(values['max-staleness']);
  if (!(Number.isFinite(maxStaleness) && maxStaleness > 0)) usageError('--max-staleness must be a positive number of seconds');
  const listen = /^(.+):(\d{1,5})$/.exec(values.listen);
  if (!listen || Number(listen[2]) > 65535) usageError('--listen must be HOST:PORT');
  return {
    issuer: values.issuer,
    audience: values.audience,
    host: listen[1].replace(/^\[(.*)\]$/, '$1'),
    port: Number(listen[2]),
    maxStaleness,
    failOpen: values['fail-open'],
    allowInsecureHttp: values['allow-insecure-http'],
  };
}

function usageError(message) {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function send(req, res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  // Request bodies are never read: a request that has one ends its connection.
  const hasBody = (req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(hasBody ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

async function handle(auth, req, res) {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path !== '/me' && path !== '/healthz') return send(req, res, 404, { error: 'not_found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(req, res, 405, { error: 'method_not_allowed' }, { allow: 'GET, HEAD' });
  }
  if (path === '/healthz') return send(req, res, 200, { status: 'ok' });

  const result = await auth.verify(req);
  if (result.claims) return send(req, res, 200, result.claims);
  const headers = { 'www-authenticate': result.wwwAuthenticate };
  if (result.status === 503) headers['retry-after'] = '1';
  return send(req, res, result.status, {
    error: result.error ?? 'unauthorized',
    ...(result.description ? { error_description: result.description } : {}),
  }, headers);
}

async function main() {
  const options = parseCommandLine();
  let auth;
  try {
    auth = createTesseraAuth(options);
    await auth.start();
  } catch (error) {
    console.error(`tessera-auth: cannot start: ${error.message}`);
    process.exit(1);
  }

  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(auth, req, res).catch((error) => {
      console.error(`request failed: ${error.message}`);
      if (!res.headersSent) send(req, res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxRequestsPerSocket = 1000;
  // More simultaneous connections are closed at once.
  server.maxConnections = 1024;

  server.on('error', (error) => {
    console.error(`cannot listen on ${options.host}:${options.port}: ${error.message}`);
    auth.close();
    process.exit(1);
  });
  server.listen(options.port, options.host, () => {
    const { address, port } = server.address();
    const host = address.includes(':') ? `[${address}]` : address;
    process.stdout.write(`listening on ${host}:${port}\n`);
  });

  const stop = () => {
    auth.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
