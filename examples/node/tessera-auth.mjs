// Verifies Tessera access tokens in a Node resource server and follows
// Tessera's revocation event stream. Mirrors crates/tessera-verifier:
//
// * keys come from the issuer's JWKS (found by RFC 8414 discovery); the
//   algorithm is the key's, never the token's;
// * access tokens are JWTs with `typ: at+jwt`, checked for `iss`, `aud`,
//   `exp`, `nbf`, `iat` with a leeway of 5 s;
// * ended sessions, subject-wide logouts and revoked keys are read page by
//   page (`GET {revocation_events_endpoint}?after=SEQ`), then arrive over
//   Server-Sent Events within a second, and are kept until their `until`;
// * revocation data not confirmed current for `maxStaleness` seconds fails
//   closed (503) unless `failOpen`. It is current once the backlog is read,
//   and on the stream once the issuer's heartbeat says nothing is queued.
//
// Not supported (refused with 401 invalid_token): PASETO tokens and
// DPoP-bound tokens.
//
//   const auth = createTesseraAuth({ issuer, audience });
//   await auth.start();
//   const result = await auth.verify(req);   // { claims } or a refusal
//   auth.close();

import { setTimeout as sleep } from 'node:timers/promises';

import { decodeProtectedHeader, errors, importJWK, jwtVerify } from 'jose';

/** Longest token accepted, checked before any decoding. */
const MAX_TOKEN_BYTES = 8 * 1024;
/** Clock leeway for `exp`, `nbf` and `iat`. */
const LEEWAY_SECONDS = 5;
/** At most one JWKS refetch for an unknown `kid` in this long. */
const KEY_REFETCH_INTERVAL_MS = 10_000;
/** The JWKS is refetched per its Cache-Control max-age, within these bounds. */
const MIN_KEYS_MAX_AGE_MS = 30_000;
const MAX_KEYS_MAX_AGE_MS = 3_600_000;
const DEFAULT_KEYS_MAX_AGE_MS = 300_000;
/** Reconnect delays of the revocation stream. */
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A stream that sends nothing (not even a heartbeat) this long is reopened. */
const STREAM_READ_TIMEOUT_MS = 10_000;
/** Timeout of discovery and JWKS requests. */
const HTTP_TIMEOUT_MS = 5_000;
/** Largest discovery or JWKS document read. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Longest line read from the event stream; longer lines are dropped. */
const MAX_SSE_LINE_BYTES = 64 * 1024;
/** How long `start()` waits for the stream to answer. */
const START_TIMEOUT_MS = 10_000;
/** At most one fail-open warning in this long. */
const WARN_INTERVAL_MS = 10_000;

const REALM = 'tessera';
const ALGORITHMS = { EdDSA: { kty: 'OKP', crv: 'Ed25519' }, ES256: { kty: 'EC', crv: 'P-256' } };
const PLAIN_KID = /^[A-Za-z0-9._-]{1,128}$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64'];

/**
 * A verifier for one issuer and audience.
 *
 * @param {object} options
 * @param {string} options.issuer the issuer's URL, exactly as in its tokens' `iss`
 * @param {string} options.audience the audience this server accepts
 * @param {number} [options.maxStaleness=30] seconds after which revocation data is stale
 * @param {boolean} [options.failOpen=false] accept tokens (with a warning) while it is stale
 * @param {boolean} [options.allowInsecureHttp=false] allow http:// to hosts other than loopback
 * @param {(message: string) => void} [options.log] where warnings go (default: stderr)
 */
export function createTesseraAuth({
  issuer,
  audience,
  maxStaleness = 30,
  failOpen = false,
  allowInsecureHttp = false,
  log = (message) => console.error(`tessera-auth: ${message}`),
} = {}) {
  if (typeof issuer !== 'string' || !issuer) throw new TypeError('issuer is required');
  if (typeof audience !== 'string' || !audience) throw new TypeError('audience is required');
  if (!(Number.isFinite(maxStaleness) && maxStaleness > 0)) {
    throw new TypeError('maxStaleness must be a positive number of seconds');
  }
  checkUrl(issuer, allowInsecureHttp);

  let metadata = null;
  /** kid → { alg, key } */
  let keys = new Map();
  let keysInFlight = null;
  let unknownKeyFetchAt = -Infinity;
  let unknownKeyInFlight = null;
  let keysTimer = null;

  const revoked = {
    /** sid → until */
    sessions: new Map(),
    /** sub → { at, until } */
    subjects: new Map(),
    /** kid → until */
    keys: new Map(),
  };
  let lastSeq = 0;
  /**
   * performance.now() when the data was last known caught up (the backlog
   * read to its end, or the stream's heartbeat or later data); null: never.
   */
  let freshAt = null;
  let lastWarnAt = -Infinity;
  let closed = false;
  /** Aborted by `close()`: ends a reconnect wait at once. */
  const closing = new AbortController();
  let streamAbort = null;
  let pruneTimer = null;
  /** Resolves `start()`'s wait for the stream's answer. */
  let onStreamOpen = null;

  async function start() {
    metadata = await fetchJson(`${issuer.replace(/\/+$/, '')}/.well-known/oauth-authorization-server`);
    if (metadata.issuer !== issuer) {
      throw new Error(`discovery names issuer ${JSON.stringify(metadata.issuer)}, not ${JSON.stringify(issuer)}`);
    }
    for (const field of ['jwks_uri', 'revocation_events_endpoint']) {
      if (typeof metadata[field] !== 'string') throw new Error(`discovery lacks ${field}`);
      checkUrl(metadata[field], allowInsecureHttp);
    }
    await refreshKeys({ throwOnError: true });

    // The whole backlog first: the stream replays it too, but until its end
    // arrives, tokens of sessions revoked late in it would be accepted.
    await catchUp();
    markFresh();

    const streamOpen = new Promise((resolve) => { onStreamOpen = resolve; });
    followStream();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the revocation stream did not answer within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([streamOpen, timeout]);
    } catch (error) {
      close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    pruneTimer = setInterval(prune, 60_000);
    pruneTimer.unref();
  }

  function close() {
    closed = true;
    closing.abort();
    streamAbort?.abort();
    clearTimeout(keysTimer);
    clearInterval(pruneTimer);
  }

  // ---- keys ---------------------------------------------------------------

  /**
   * Fetches the JWKS now; concurrent callers share one fetch. Key
   * revocations and the max-age timer call this; `start()` with
   * `throwOnError`.
   */
  function refreshKeys({ throwOnError = false } = {}) {
    keysInFlight ??= (async () => {
      try {
        const { body, maxAgeMs } = await fetchDocument(metadata.jwks_uri);
        const imported = await importKeySet(body);
        // A key revoked while this fetch was in flight stays out.
        for (const kid of revoked.keys.keys()) imported.delete(kid);
        keys = imported;
        scheduleKeyRefresh(maxAgeMs);
      } catch (error) {
        log(`JWKS fetch failed (keeping ${keys.size} cached keys): ${error.message}`);
        scheduleKeyRefresh(MIN_KEYS_MAX_AGE_MS);
        if (throwOnError) throw error;
      } finally {
        keysInFlight = null;
      }
    })();
    return keysInFlight;
  }

  /**
   * For a token naming a key not in the cache: one fetch, shared by every
   * request waiting on it, at most once per KEY_REFETCH_INTERVAL_MS, so
   * forged `kid`s cannot cause a storm. A fetch already under way may
   * predate the new key: it is awaited, then the JWKS is fetched afresh.
   */
  function refetchForUnknownKey() {
    if (performance.now() - unknownKeyFetchAt < KEY_REFETCH_INTERVAL_MS) {
      return unknownKeyInFlight ?? Promise.resolve();
    }
    unknownKeyFetchAt = performance.now();
    unknownKeyInFlight = (async () => {
      await keysInFlight;
      await refreshKeys();
    })().finally(() => {
      unknownKeyInFlight = null;
    });
    return unknownKeyInFlight;
  }

  function scheduleKeyRefresh(maxAgeMs) {
    clearTimeout(keysTimer);
    if (closed) return;
    keysTimer = setTimeout(refreshKeys, maxAgeMs);
    keysTimer.unref();
  }

  async function importKeySet(body) {
    if (!body || !Array.isArray(body.keys)) throw new Error('the JWKS has no "keys" array');
    const imported = new Map();
    for (const jwk of body.keys) {
      const expected = ALGORITHMS[jwk?.alg];
      if (!expected || jwk.kty !== expected.kty || jwk.crv !== expected.crv) continue;
      if (typeof jwk.kid !== 'string' || !PLAIN_KID.test(jwk.kid)) continue;
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      if (revoked.keys.has(jwk.kid)) continue;
      try {
        const { kty, crv, x, y } = jwk;
        imported.set(jwk.kid, { alg: jwk.alg, key: await importJWK({ kty, crv, x, y }, jwk.alg) });
      } catch (error) {
        log(`JWKS key ${jwk.kid} skipped: ${error.message}`);
      }
    }
    return imported;
  }

  // ---- revocation stream --------------------------------------------------

  function isFresh() {
    return freshAt !== null && performance.now() - freshAt <= maxStaleness * 1000;
  }

  function markFresh() {
    freshAt = performance.now();
  }

  /**
   * Reads every event after `lastSeq`, page by page, until a page is empty.
   * Does not mark the data fresh: `start()` does, and after a reconnect only
   * the new stream's heartbeat does.
   */
  async function catchUp() {
    const url = metadata.revocation_events_endpoint.replace(/\/+$/, '');
    for (;;) {
      const after = lastSeq;
      const { body } = await fetchDocument(`${url}?after=${after}`);
      if (!body || !Array.isArray(body.events) || !Number.isSafeInteger(body.next)) {
        throw new Error(`GET ${url}?after=${after}: not a page of revocation events`);
      }
      const events = [];
      for (const raw of body.events) {
        const event = checkEvent(raw);
        if (!event) {
          // Never skip an event: keep what came before it.
          applyEvents(events);
          throw new Error('undecodable revocation event');
        }
        events.push(event);
      }
      applyEvents(events);
      // A page that does not move the position would loop forever.
      if (events.length === 0 || body.next <= after) return;
    }
  }

  async function followStream() {
    let backoff = MIN_BACKOFF_MS;
    // `start()` has just read the backlog.
    let caughtUp = true;
    while (!closed) {
      const started = performance.now();
      try {
        if (!caughtUp) {
          // What was missed while disconnected, by pages; a failure here is
          // not fatal: the stream replays from Last-Event-ID as well.
          await catchUp().catch((error) => log(`revocation catch-up failed (${describe(error)})`));
        }
        caughtUp = false;
        await streamOnce();
        if (!closed) log('revocation stream closed by the issuer; reconnecting');
      } catch (error) {
        if (!closed) log(`revocation stream broke (${describe(error)}); reconnecting`);
      }
      if (closed) return;
      // A stream that lived a while was healthy: back off afresh.
      if (performance.now() - started > MAX_BACKOFF_MS) backoff = MIN_BACKOFF_MS;
      await sleep(backoff, undefined, { signal: closing.signal }).catch(() => {});
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  async function streamOnce() {
    const abort = new AbortController();
    streamAbort = abort;
    let quiet;
    const resetQuietTimer = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => abort.abort(new Error('stream quiet for too long')), STREAM_READ_TIMEOUT_MS);
    };
    resetQuietTimer();
    try {
      const url = `${metadata.revocation_events_endpoint.replace(/\/+$/, '')}/stream`;
      const response = await fetch(url, {
        headers: { accept: 'text/event-stream', 'last-event-id': String(lastSeq) },
        redirect: 'error',
        signal: abort.signal,
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new Error(`status ${response.status}`);
      }
      onStreamOpen?.();
      onStreamOpen = null;
      const parser = new SseParser();
      for await (const chunk of response.body) {
        resetQuietTimer();
        const events = [];
        const heartbeatsBefore = parser.heartbeats;
        for (const data of parser.feed(chunk)) {
          const event = parseEvent(data);
          if (!event) {
            // Never skip an event: keep what came before it and resume
            // from there (Last-Event-ID).
            applyEvents(events);
            throw new Error('undecodable revocation event');
          }
          events.push(event);
        }
        applyEvents(events);
        // The issuer first replays what this connection missed, and sends
        // a heartbeat only when it has nothing queued: the data is current
        // once this connection has sent one, and stays so while it keeps
        // sending whole events or heartbeats. Before that (a reconnect
        // replaying a backlog) the data keeps ageing.
        const heartbeat = parser.heartbeats > heartbeatsBefore;
        if (parser.heartbeats > 0 && (heartbeat || events.length > 0)) markFresh();
      }
    } catch (error) {
      throw abort.signal.reason instanceof Error ? abort.signal.reason : error;
    } finally {
      clearTimeout(quiet);
      abort.abort();
    }
  }

  function applyEvents(events) {
    let keyRevoked = false;
    for (const { seq, kind, id, at, until } of events) {
      if (kind === 'session') {
        revoked.sessions.set(id, Math.max(until, revoked.sessions.get(id) ?? until));
      } else if (kind === 'subject') {
        // A later logout of the same subject covers more tokens.
        const entry = revoked.subjects.get(id);
        revoked.subjects.set(id, {
          at: Math.max(at, entry?.at ?? at),
          until: Math.max(until, entry?.until ?? until),
        });
      } else if (kind === 'key') {
        revoked.keys.set(id, Math.max(until, revoked.keys.get(id) ?? until));
        // Out of the key map too: once the entry is pruned at `until`, a
        // failed JWKS refresh must not leave the key trusted.
        keys.delete(id);
        keyRevoked = true;
      } // other kinds (from a newer issuer) are ignored
      lastSeq = Math.max(lastSeq, seq);
    }
    if (events.length) prune();
    // Learn the revoked key's replacement now, not at the next max-age.
    if (keyRevoked) refreshKeys();
  }

  function prune() {
    const now = Date.now() / 1000;
    for (const [id, until] of revoked.sessions) if (until < now) revoked.sessions.delete(id);
    for (const [id, { until }] of revoked.subjects) if (until < now) revoked.subjects.delete(id);
    for (const [id, until] of revoked.keys) if (until < now) revoked.keys.delete(id);
  }

  // ---- verification -------------------------------------------------------

  /**
   * Verifies the request's bearer token.
   *
   * @param {import('node:http').IncomingMessage} req
   * @returns {Promise<{claims: object} | {status: number, wwwAuthenticate: string, error: string|null, description?: string}>}
   */
  async function verify(req) {
    const values = req.headersDistinct?.authorization
      ?? (req.headers?.authorization === undefined ? [] : [req.headers.authorization]);
    if (values.length === 0) return missing();
    if (values.length > 1) return refuse(400, 'invalid_request', 'more than one Authorization header');
    const value = values[0];
    const space = value.indexOf(' ');
    if (space < 0) return refuse(400, 'invalid_request', 'malformed Authorization header');
    const scheme = value.slice(0, space).toLowerCase();
    if (scheme === 'dpop') return invalid('DPoP-bound tokens are not supported by this example');
    // Another scheme (Basic, ...) carries no bearer token.
    if (scheme !== 'bearer') return missing();
    const token = value.slice(space + 1).replace(/^ +/, '');
    if (!token || token.includes(' ')) return refuse(400, 'invalid_request', 'malformed Authorization header');
    return verifyToken(token);
  }

  /** Verifies a bearer token (the string after `Bearer `). */
  async function verifyToken(token) {
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return invalid('token too long');
    if (token.startsWith('v4.public.')) return invalid('PASETO tokens are not supported by this example');
    if (token.startsWith('trt_')) return invalid('a refresh token is not an access token');
    if (!COMPACT_JWS.test(token)) return invalid('malformed token');

    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return invalid('malformed token header');
    }
    if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') {
      return invalid('algorithm not allowed');
    }
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : null;
    if (typ !== 'at+jwt') return invalid('typ is not at+jwt');
    if (FORBIDDEN_HEADERS.some((name) => Object.hasOwn(header, name))) return invalid('header parameter not allowed');
    if (typeof header.kid !== 'string' || !PLAIN_KID.test(header.kid)) return invalid('missing or malformed kid');
    if (revoked.keys.has(header.kid)) return invalid('signing key revoked');

    let entry = keys.get(header.kid);
    if (!entry) {
      await refetchForUnknownKey();
      entry = keys.get(header.kid);
      if (!entry || revoked.keys.has(header.kid)) return invalid('no trusted key for this token');
    }
    if (header.alg !== entry.alg) return invalid('algorithm does not match the key');

    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, entry.key, {
        algorithms: [entry.alg],
        issuer,
        audience,
        typ: 'at+jwt',
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'jti'],
      }));
    } catch (error) {
      return invalid(describeJoseError(error));
    }
    const now = Date.now() / 1000;
    if (claims.iat > now + LEEWAY_SECONDS) return invalid('token issued in the future');
    for (const name of ['sub', 'jti', 'client_id']) {
      if (typeof claims[name] !== 'string') return invalid(`claim ${name} missing or not a string`);
    }
    for (const name of ['sid', 'scope']) {
      if (claims[name] !== undefined && typeof claims[name] !== 'string') return invalid(`claim ${name} is not a string`);
    }
    if (claims.cnf !== undefined) return invalid('DPoP-bound tokens are not supported by this example');

    if (claims.sid !== undefined && revoked.sessions.has(claims.sid)) return invalid('session revoked');
    const subject = revoked.subjects.get(claims.sub);
    if (subject && claims.iat <= subject.at) return invalid('subject revoked');

    if (!isFresh()) {
      if (!failOpen) {
        return {
          status: 503,
          error: 'temporarily_unavailable',
          description: 'revocation data is stale',
          wwwAuthenticate: 'Bearer realm="tessera", error="temporarily_unavailable", error_description="revocation data is stale"',
        };
      }
      if (performance.now() - lastWarnAt > WARN_INTERVAL_MS) {
        lastWarnAt = performance.now();
        log('revocation data is stale; accepting tokens anyway (failOpen)');
      }
    }
    return { claims };
  }

  // ---- HTTP ---------------------------------------------------------------

  async function fetchDocument(url) {
    let response;
    try {
      response = await fetch(url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
    } catch (error) {
      throw new Error(`GET ${url}: ${describe(error)}`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`GET ${url}: status ${response.status}`);
    }
    const chunks = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_DOCUMENT_BYTES) throw new Error(`GET ${url}: document over ${MAX_DOCUMENT_BYTES} bytes`);
      chunks.push(chunk);
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new Error(`GET ${url}: not JSON`);
    }
    return { body, maxAgeMs: maxAge(response.headers.get('cache-control')) };
  }

  async function fetchJson(url) {
    const { body } = await fetchDocument(url);
    if (!body || typeof body !== 'object') throw new Error(`GET ${url}: not a JSON object`);
    return body;
  }

  return { start, verify, verifyToken, close, isFresh };
}

/** The `WWW-Authenticate` value of a request without credentials. */
function missing() {
  return { status: 401, error: null, wwwAuthenticate: `Bearer realm="${REALM}"` };
}

function invalid(description) {
  return refuse(401, 'invalid_token', description);
}

function refuse(status, error, description) {
  return {
    status,
    error,
    description,
    wwwAuthenticate: `Bearer realm="${REALM}", error="${error}", error_description="${quotedSafe(description)}"`,
  };
}

/** RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E inside quoted values. */
function quotedSafe(text) {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}

function describeJoseError(error) {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'audience does not match';
    if (error.claim === 'iss') return 'issuer does not match';
    if (error.claim === 'nbf') return 'token not yet valid';
    if (error.reason === 'missing') return `claim ${error.claim} missing`;
    return `claim ${error.claim} rejected`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm does not match the key';
  return 'malformed token';
}

function maxAge(cacheControl) {
  const match = /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(cacheControl ?? '');
  const ms = match ? Number(match[1]) * 1000 : DEFAULT_KEYS_MAX_AGE_MS;
  return Math.min(Math.max(ms, MIN_KEYS_MAX_AGE_MS), MAX_KEYS_MAX_AGE_MS);
}

/** https://, or http:// to a loopback host (unless insecure HTTP is allowed). */
function checkUrl(text, allowInsecureHttp) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol === 'https:') return;
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol === 'http:' && (loopback || allowInsecureHttp)) return;
  throw new Error(`refusing ${url.protocol}//${url.host}: use https (or allow insecure HTTP)`);
}

function parseEvent(data) {
  try {
    return checkEvent(JSON.parse(data));
  } catch {
    return null;
  }
}

/** One event of a page or of the stream, or null when it is malformed. */
function checkEvent(event) {
  const { seq, kind, id, at, until } = event ?? {};
  if (![seq, at, until].every(Number.isSafeInteger) || typeof kind !== 'string' || typeof id !== 'string') {
    return null;
  }
  return { seq, kind, id, at, until };
}

/** An error's message, with the network cause `fetch` hides behind "fetch failed". */
function describe(error) {
  const cause = error?.cause;
  return cause ? `${error.message}: ${cause.code ?? cause.message}` : String(error?.message ?? error);
}

/**
 * A minimal `text/event-stream` reader: collects `data:` lines per event
 * and yields each event's data at its blank line. Lines end with CRLF, LF
 * or a bare CR. `heartbeats` counts the issuer's `: heartbeat` comments;
 * other comments and fields are skipped.
 */
class SseParser {
  /** `: heartbeat` lines read whole so far. */
  heartbeats = 0;
  #line = [];
  #lineBytes = 0;
  #data = null;
  #afterCr = false;
  #decoder = new TextDecoder();

  /** @param {Uint8Array} bytes @returns {string[]} */
  feed(bytes) {
    const out = [];
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const afterCr = this.#afterCr;
      this.#afterCr = b === 0x0d;
      if (b !== 0x0a && b !== 0x0d) continue;
      if (b === 0x0a && afterCr && i === start) {
        start = i + 1;
        continue;
      }
      this.#push(bytes.subarray(start, i));
      start = i + 1;
      this.#endLine(out);
    }
    this.#push(bytes.subarray(start));
    return out;
  }

  #push(part) {
    if (part.length === 0 || this.#lineBytes >= MAX_SSE_LINE_BYTES) return;
    const room = MAX_SSE_LINE_BYTES - this.#lineBytes;
    const kept = part.length > room ? part.subarray(0, room) : part;
    this.#line.push(Uint8Array.from(kept));
    this.#lineBytes += kept.length;
  }

  #endLine(out) {
    const line = this.#decoder.decode(Buffer.concat(this.#line));
    this.#line = [];
    this.#lineBytes = 0;
    if (line === '') {
      if (this.#data !== null) out.push(this.#data);
      this.#data = null;
    } else if (line.startsWith('data:')) {
      const rest = line.slice(5).replace(/^ /, '');
      this.#data = this.#data === null ? rest : `${this.#data}\n${rest}`;
    } else if (line === ': heartbeat' || line === ':heartbeat') {
      this.heartbeats += 1;
    }
  }
}

export { SseParser as _SseParser };
