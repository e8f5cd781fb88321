"""Verifies Tessera access tokens in a Python resource server and follows
Tessera's revocation event stream. Mirrors crates/tessera-verifier:

* keys come from the issuer's JWKS (found by RFC 8414 discovery); the
  algorithm is the key's, never the token's;
* access tokens are JWTs with ``typ: at+jwt``, checked for ``iss``, ``aud``,
  ``exp``, ``nbf``, ``iat`` with a leeway of 5 s;
* ended sessions, subject-wide logouts and revoked keys are read page by
  page (``GET {revocation_events_endpoint}?after=SEQ``), then arrive over
  Server-Sent Events within a second, and are kept until their ``until``;
* revocation data not confirmed current for ``max_staleness`` seconds fails
  closed (503) unless ``fail_open``. It is current once the backlog is read,
  and on the stream once the issuer's heartbeat says nothing is queued.

Not supported (refused with 401 invalid_token): PASETO tokens and
DPoP-bound tokens.

    auth = TesseraAuth("https://auth.example.com", "api")
    auth.start()
    result = auth.verify(handler.headers)   # Verified(claims) or Refusal(...)
    auth.close()

Needs PyJWT[crypto] (requirements.txt); the rest is the standard library.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable

import jwt
from jwt import PyJWK

log = logging.getLogger("tessera_auth")

MAX_TOKEN_BYTES = 8 * 1024
"""Longest token accepted, checked before any decoding."""
LEEWAY_SECONDS = 5
"""Clock leeway for ``exp``, ``nbf`` and ``iat``."""
KEY_REFETCH_INTERVAL = 10.0
"""At most one JWKS refetch for an unknown ``kid`` in this many seconds."""
MIN_KEYS_MAX_AGE, MAX_KEYS_MAX_AGE, DEFAULT_KEYS_MAX_AGE = 30.0, 3600.0, 300.0
"""The JWKS is refetched per its Cache-Control max-age, within these bounds."""
MIN_BACKOFF, MAX_BACKOFF = 0.1, 5.0
"""Reconnect delays of the revocation stream."""
STREAM_READ_TIMEOUT = 10.0
"""A stream that sends nothing (not even a heartbeat) this long is reopened."""
HTTP_TIMEOUT = 5.0
"""Timeout of discovery and JWKS requests."""
MAX_DOCUMENT_BYTES = 1024 * 1024
"""Largest discovery or JWKS document read."""
MAX_SSE_LINE_BYTES = 64 * 1024
"""Longest line read from the event stream; longer lines are dropped."""
START_TIMEOUT = 10.0
"""How long ``start()`` waits for the stream to answer."""
WARN_INTERVAL = 10.0
"""At most one fail-open warning in this many seconds."""

REALM = "tessera"
ALGORITHMS = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}
PLAIN_KID = re.compile(r"[A-Za-z0-9._-]{1,128}")
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64")
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti"]


@dataclass(frozen=True)
class Verified:
    """A request whose token verified: its claims."""

    claims: dict[str, Any]
    ok: bool = field(default=True, init=False)


@dataclass(frozen=True)
class Refusal:
    """A refused request: the status, the RFC 6750 challenge and the error code."""

    status: int
    www_authenticate: str
    error: str | None = None
    description: str | None = None
    ok: bool = field(default=False, init=False)


def _missing() -> Refusal:
    return Refusal(401, f'Bearer realm="{REALM}"')


def _refuse(status: int, error: str, description: str) -> Refusal:
    challenge = (
        f'Bearer realm="{REALM}", error="{error}", '
        f'error_description="{_quoted_safe(description)}"'
    )
    return Refusal(status, challenge, error, description)


def _invalid(description: str) -> Refusal:
    return _refuse(401, "invalid_token", description)


_STALE = Refusal(
    503,
    'Bearer realm="tessera", error="temporarily_unavailable", error_description="revocation data is stale"',
    "temporarily_unavailable",
    "revocation data is stale",
)


def _quoted_safe(text: str) -> str:
    """RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E inside quoted values."""
    return "".join(
        "'" if c in '"\\' else c if " " <= c <= "~" else "?" for c in text
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        raise urllib.error.HTTPError(req.full_url, code, "redirects are refused", headers, fp)


_opener = urllib.request.build_opener(_NoRedirect())


def _check_url(text: str, allow_insecure_http: bool) -> urllib.parse.SplitResult:
    """https://, or http:// to a loopback host (unless insecure HTTP is allowed)."""
    url = urllib.parse.urlsplit(text)
    if url.scheme == "https" and url.hostname:
        return url
    if url.scheme == "http" and url.hostname:
        if allow_insecure_http or url.hostname == "localhost":
            return url
        try:
            if ipaddress.ip_address(url.hostname).is_loopback:
                return url
        except ValueError:
            pass
    raise ValueError(f"refusing {text!r}: use https (or allow insecure HTTP)")


def _max_age(cache_control: str | None) -> float:
    match = re.search(r"(?:^|,)\s*max-age\s*=\s*(\d+)", cache_control or "", re.I)
    seconds = float(match.group(1)) if match else DEFAULT_KEYS_MAX_AGE
    return min(max(seconds, MIN_KEYS_MAX_AGE), MAX_KEYS_MAX_AGE)


def _parse_event(data: str) -> dict[str, Any] | None:
    try:
        return _check_event(json.loads(data))
    except ValueError:
        return None


def _check_event(event: Any) -> dict[str, Any] | None:
    """One event of a page or of the stream, or None when it is malformed."""
    if not isinstance(event, dict):
        return None
    ints = [event.get(name) for name in ("seq", "at", "until")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        return None
    if not isinstance(event.get("kind"), str) or not isinstance(event.get("id"), str):
        return None
    return event


class SseParser:
    """A minimal ``text/event-stream`` reader: collects ``data:`` lines per
    event and yields each event's data at its blank line. Lines end with
    CRLF, LF or a bare CR. ``heartbeats`` counts the issuer's
    ``: heartbeat`` comments; other comments and fields are skipped."""

    def __init__(self) -> None:
        self.heartbeats = 0
        """``: heartbeat`` lines read whole so far."""
        self._line = bytearray()
        self._data: str | None = None
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        out: list[str] = []
        start = 0
        for i, b in enumerate(chunk):
            after_cr, self._after_cr = self._after_cr, b == 0x0D
            if b not in (0x0A, 0x0D):
                continue
            if b == 0x0A and after_cr and i == start:
                start = i + 1
                continue
            self._push(chunk[start:i])
            start = i + 1
            self._end_line(out)
        self._push(chunk[start:])
        return out

    def _push(self, part: bytes) -> None:
        room = MAX_SSE_LINE_BYTES - len(self._line)
        if part and room > 0:
            self._line += part[:room]

    def _end_line(self, out: list[str]) -> None:
        line = self._line.decode("utf-8", "replace")
        self._line.clear()
        if not line:
            if self._data is not None:
                out.append(self._data)
            self._data = None
        elif line.startswith("data:"):
            rest = line[5:]
            rest = rest[1:] if rest.startswith(" ") else rest
            self._data = rest if self._data is None else f"{self._data}\n{rest}"
        elif line in (": heartbeat", ":heartbeat"):
            self.heartbeats += 1


class TesseraAuth:
    """A verifier for one issuer and audience.

    ``issuer`` is the issuer's URL exactly as in its tokens' ``iss``;
    ``max_staleness`` the seconds after which revocation data is stale;
    ``fail_open`` accepts tokens (with a warning) while it is stale.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        max_staleness: float = 30,
        fail_open: bool = False,
        allow_insecure_http: bool = False,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience are required")
        if not max_staleness > 0:
            raise ValueError("max_staleness must be a positive number of seconds")
        _check_url(issuer, allow_insecure_http)
        self.issuer = issuer
        self.audience = audience
        self.max_staleness = float(max_staleness)
        self.fail_open = fail_open
        self._allow_insecure_http = allow_insecure_http
        self._metadata: dict[str, Any] = {}

        # kid -> (alg, PyJWK); replaced whole on each fetch.
        self._keys: dict[str, tuple[str, PyJWK]] = {}
        self._keys_lock = threading.Lock()
        self._unknown_key_lock = threading.Lock()
        self._unknown_key_fetch_at = float("-inf")

        # What is revoked, with each entry's `until` (and `at` for subjects).
        self._lock = threading.Lock()
        self._sessions: dict[str, int] = {}
        self._subjects: dict[str, tuple[int, int]] = {}
        self._revoked_keys: dict[str, int] = {}
        self._last_seq = 0
        # time.monotonic() when the data was last known caught up (the
        # backlog read to its end, or the stream's heartbeat or later data);
        # None: never.
        self._fresh_at: float | None = None
        self._last_warn_at = float("-inf")

        self._closed = threading.Event()
        self._stream_open = threading.Event()
        self._stream_sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # ---- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Discovery, JWKS, the backlog of revocation events, then the
        revocation stream's answer; raises if any of them fails (within
        ``START_TIMEOUT`` for the stream)."""
        url = self.issuer.rstrip("/") + "/.well-known/oauth-authorization-server"
        metadata, _ = self._fetch_json(url)
        if not isinstance(metadata, dict):
            raise ValueError("discovery document is not a JSON object")
        if metadata.get("issuer") != self.issuer:
            raise ValueError(
                f"discovery names issuer {metadata.get('issuer')!r}, not {self.issuer!r}"
            )
        for name in ("jwks_uri", "revocation_events_endpoint"):
            if not isinstance(metadata.get(name), str):
                raise ValueError(f"discovery lacks {name}")
            _check_url(metadata[name], self._allow_insecure_http)
        self._metadata = metadata
        self._refresh_keys(raise_errors=True)

        # The whole backlog first: the stream replays it too, but until its
        # end arrives, tokens of sessions revoked late in it would be accepted.
        self._catch_up()
        self._mark_fresh()

        for target, name in (
            (self._follow_stream, "tessera-revocations"),
            (self._refresh_keys_periodically, "tessera-jwks"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._stream_open.wait(START_TIMEOUT):
            self.close()
            raise TimeoutError(
                f"the revocation stream did not answer within {START_TIMEOUT:g} s"
            )

    def close(self) -> None:
        """Stops the stream and the key refresh (their threads are daemons)."""
        self._closed.set()
        sock = self._stream_sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def is_fresh(self) -> bool:
        fresh_at = self._fresh_at
        return fresh_at is not None and time.monotonic() - fresh_at <= self.max_staleness

    # ---- keys ---------------------------------------------------------------

    def _refresh_keys(self, raise_errors: bool = False) -> float:
        """Fetches the JWKS now; answers when to fetch it next (seconds)."""
        with self._keys_lock:
            try:
                body, cache_control = self._fetch_json(self._metadata["jwks_uri"])
                keys = self._import_key_set(body)
            except Exception as error:  # noqa: BLE001 - any failure keeps the cache
                log.warning("JWKS fetch failed (keeping %d cached keys): %s", len(self._keys), error)
                if raise_errors:
                    raise
                return MIN_KEYS_MAX_AGE
            with self._lock:
                # A key revoked while this fetch was in flight stays out
                # (`_apply` drops revoked keys under the same lock).
                for kid in self._revoked_keys:
                    keys.pop(kid, None)
                self._keys = keys
            return _max_age(cache_control)

    def _refresh_keys_periodically(self) -> None:
        wait = DEFAULT_KEYS_MAX_AGE
        while not self._closed.wait(wait):
            wait = self._refresh_keys()

    def _refetch_for_unknown_key(self) -> None:
        """One fetch for a token naming a key not in the cache, at most once
        per ``KEY_REFETCH_INTERVAL`` (so forged ``kid``s cannot cause a
        storm); concurrent requests wait for it."""
        with self._unknown_key_lock:
            if time.monotonic() - self._unknown_key_fetch_at < KEY_REFETCH_INTERVAL:
                return
            self._unknown_key_fetch_at = time.monotonic()
            self._refresh_keys()

    def _import_key_set(self, body: Any) -> dict[str, tuple[str, PyJWK]]:
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise ValueError('the JWKS has no "keys" array')
        keys: dict[str, tuple[str, PyJWK]] = {}
        for jwk in body["keys"]:
            if not isinstance(jwk, dict):
                continue
            alg, kid = jwk.get("alg"), jwk.get("kid")
            expected = ALGORITHMS.get(alg) if isinstance(alg, str) else None
            if expected is None or (jwk.get("kty"), jwk.get("crv")) != expected:
                continue
            if not isinstance(kid, str) or not PLAIN_KID.fullmatch(kid):
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            public = {name: jwk[name] for name in ("kty", "crv", "x", "y") if name in jwk}
            try:
                keys[kid] = (alg, PyJWK(public, algorithm=alg))
            except jwt.PyJWKError as error:
                log.warning("JWKS key %s skipped: %s", kid, error)
        return keys

    # ---- revocation stream ----------------------------------------------------

    def _mark_fresh(self) -> None:
        self._fresh_at = time.monotonic()

    def _catch_up(self) -> None:
        """Reads every event after the last one seen, page by page, until a
        page is empty. Does not mark the data fresh: ``start()`` does, and
        after a reconnect only the new stream's heartbeat does."""
        url = self._metadata["revocation_events_endpoint"].rstrip("/")
        while True:
            after = self._last_seq
            page, _ = self._fetch_json(f"{url}?after={after}")
            events = page.get("events") if isinstance(page, dict) else None
            next_seq = page.get("next") if isinstance(page, dict) else None
            if (
                not isinstance(events, list)
                or not isinstance(next_seq, int)
                or isinstance(next_seq, bool)
            ):
                raise ValueError(f"GET {url}?after={after}: not a page of revocation events")
            checked: list[dict[str, Any]] = []
            for raw in events:
                event = _check_event(raw)
                if event is None:
                    # Never skip an event: keep what came before it.
                    self._apply(checked)
                    raise ValueError("undecodable revocation event")
                checked.append(event)
            self._apply(checked)
            # A page that does not move the position would loop forever.
            if not checked or next_seq <= after:
                return

    def _follow_stream(self) -> None:
        backoff = MIN_BACKOFF
        caught_up = True  # start() has just read the backlog
        while not self._closed.is_set():
            started = time.monotonic()
            try:
                if not caught_up:
                    # What was missed while disconnected, by pages; a failure
                    # here is not fatal: the stream replays from
                    # Last-Event-ID as well.
                    try:
                        self._catch_up()
                    except Exception as error:  # noqa: BLE001 - the stream still tries
                        log.warning("revocation catch-up failed (%s)", error)
                caught_up = False
                self._stream_once()
                if not self._closed.is_set():
                    log.warning("revocation stream closed by the issuer; reconnecting")
            except Exception as error:  # noqa: BLE001 - any failure reconnects
                if not self._closed.is_set():
                    log.warning("revocation stream broke (%s); reconnecting", error)
            # A stream that lived a while was healthy: back off afresh.
            if time.monotonic() - started > MAX_BACKOFF:
                backoff = MIN_BACKOFF
            if self._closed.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _stream_once(self) -> None:
        url = _check_url(
            self._metadata["revocation_events_endpoint"].rstrip("/") + "/stream",
            self._allow_insecure_http,
        )
        connection_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        # The socket timeout is the read timeout: a quiet stream is reopened.
        conn = connection_class(url.hostname, url.port, timeout=STREAM_READ_TIMEOUT)
        try:
            path = url.path + (f"?{url.query}" if url.query else "")
            conn.putrequest("GET", path)
            conn.putheader("Accept", "text/event-stream")
            conn.putheader("Last-Event-ID", str(self._last_seq))
            conn.endheaders()
            self._stream_sock = conn.sock
            if self._closed.is_set():
                return
            response = conn.getresponse()
            if response.status != 200:
                raise ConnectionError(f"status {response.status}")
            self._stream_open.set()
            parser = SseParser()
            while True:
                chunk = response.read1(64 * 1024)
                if not chunk:
                    return
                heartbeats_before = parser.heartbeats
                events: list[dict[str, Any]] = []
                for data in parser.feed(chunk):
                    event = _parse_event(data)
                    if event is None:
                        # Never skip an event: keep what came before it and
                        # resume from there (Last-Event-ID).
                        self._apply(events)
                        raise ValueError("undecodable revocation event")
                    events.append(event)
                self._apply(events)
                # The issuer first replays what this connection missed, and
                # sends a heartbeat only when it has nothing queued: the data
                # is current once this connection has sent one, and stays so
                # while it keeps sending whole events or heartbeats. Before
                # that (a reconnect replaying a backlog) the data keeps ageing.
                heartbeat = parser.heartbeats > heartbeats_before
                if parser.heartbeats and (heartbeat or events):
                    self._mark_fresh()
        finally:
            self._stream_sock = None
            conn.close()

    def _apply(self, events: Iterable[dict[str, Any]]) -> None:
        key_revoked = False
        with self._lock:
            for event in events:
                kind, ident, at, until = event["kind"], event["id"], event["at"], event["until"]
                if kind == "session":
                    self._sessions[ident] = max(until, self._sessions.get(ident, until))
                elif kind == "subject":
                    # A later logout of the same subject covers more tokens.
                    old_at, old_until = self._subjects.get(ident, (at, until))
                    self._subjects[ident] = (max(at, old_at), max(until, old_until))
                elif kind == "key":
                    self._revoked_keys[ident] = max(until, self._revoked_keys.get(ident, until))
                    # Out of the key map too: once the entry is pruned at
                    # `until`, a failed JWKS refresh must not leave the key
                    # trusted. A copy, so a verify reading the map meanwhile
                    # never sees it change under it.
                    if ident in self._keys:
                        self._keys = {k: v for k, v in self._keys.items() if k != ident}
                    key_revoked = True
                # other kinds (from a newer issuer) are ignored
                self._last_seq = max(self._last_seq, event["seq"])
            self._prune_locked()
        if key_revoked:
            # Learn the revoked key's replacement now, not at the next max-age.
            threading.Thread(target=self._refresh_keys, daemon=True).start()

    def _prune_locked(self) -> None:
        now = time.time()
        for table in (self._sessions, self._revoked_keys):
            for ident in [i for i, until in table.items() if until < now]:
                del table[ident]
        for ident in [i for i, (_, until) in self._subjects.items() if until < now]:
            del self._subjects[ident]

    # ---- verification -----------------------------------------------------------

    def verify(self, headers: Any) -> Verified | Refusal:
        """Verifies the bearer token of a request's headers (an
        ``email.message.Message`` such as ``BaseHTTPRequestHandler.headers``,
        or a mapping)."""
        if hasattr(headers, "get_all"):
            values = headers.get_all("Authorization") or []
        else:
            values = [v for k, v in dict(headers).items() if k.lower() == "authorization"]
        if not values:
            return _missing()
        if len(values) > 1:
            return _refuse(400, "invalid_request", "more than one Authorization header")
        scheme, space, token = values[0].partition(" ")
        if not space:
            return _refuse(400, "invalid_request", "malformed Authorization header")
        if scheme.lower() == "dpop":
            return _invalid("DPoP-bound tokens are not supported by this example")
        if scheme.lower() != "bearer":
            # Another scheme (Basic, ...) carries no bearer token.
            return _missing()
        token = token.lstrip(" ")
        if not token or " " in token:
            return _refuse(400, "invalid_request", "malformed Authorization header")
        return self.verify_token(token)

    def verify_token(self, token: str) -> Verified | Refusal:
        """Verifies a bearer token (the string after ``Bearer``)."""
        if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
            return _invalid("token too long")
        if token.startswith("v4.public."):
            return _invalid("PASETO tokens are not supported by this example")
        if token.startswith("trt_"):
            return _invalid("a refresh token is not an access token")
        if not COMPACT_JWS.fullmatch(token):
            return _invalid("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _invalid("malformed token header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            return _invalid("algorithm not allowed")
        typ = header.get("typ")
        bare_typ = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        if bare_typ != "at+jwt":
            return _invalid("typ is not at+jwt")
        if any(name in header for name in FORBIDDEN_HEADERS):
            return _invalid("header parameter not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not PLAIN_KID.fullmatch(kid):
            return _invalid("missing or malformed kid")
        if kid in self._revoked_keys:
            return _invalid("signing key revoked")

        entry = self._keys.get(kid)
        if entry is None:
            self._refetch_for_unknown_key()
            entry = self._keys.get(kid)
            if entry is None or kid in self._revoked_keys:
                return _invalid("no trusted key for this token")
        key_alg, key = entry
        if alg != key_alg:
            return _invalid("algorithm does not match the key")

        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[key_alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            return _invalid("token expired")
        except jwt.ImmatureSignatureError as error:
            if "(iat)" in str(error):
                return _invalid("token issued in the future")
            return _invalid("token not yet valid")
        except jwt.InvalidAudienceError:
            return _invalid("audience does not match")
        except jwt.InvalidIssuerError:
            return _invalid("issuer does not match")
        except jwt.MissingRequiredClaimError as error:
            return _invalid(f"claim {error.claim} missing")
        except jwt.InvalidSignatureError:
            return _invalid("signature does not verify")
        except jwt.PyJWTError:
            return _invalid("malformed token")

        if not isinstance(claims.get("iat"), (int, float)) or claims["iat"] > time.time() + LEEWAY_SECONDS:
            return _invalid("token issued in the future")
        for name in ("sub", "jti", "client_id"):
            if not isinstance(claims.get(name), str):
                return _invalid(f"claim {name} missing or not a string")
        for name in ("sid", "scope"):
            if name in claims and not isinstance(claims[name], str):
                return _invalid(f"claim {name} is not a string")
        if "cnf" in claims:
            return _invalid("DPoP-bound tokens are not supported by this example")

        with self._lock:
            if claims.get("sid") in self._sessions:
                return _invalid("session revoked")
            subject = self._subjects.get(claims["sub"])
            if subject is not None and claims["iat"] <= subject[0]:
                return _invalid("subject revoked")

        if not self.is_fresh():
            if not self.fail_open:
                return _STALE
            now = time.monotonic()
            if now - self._last_warn_at > WARN_INTERVAL:
                self._last_warn_at = now
                log.warning("revocation data is stale; accepting tokens anyway (fail_open)")
        return Verified(claims)

    # ---- HTTP -------------------------------------------------------------------

    def _fetch_json(self, url: str) -> tuple[Any, str | None]:
        _check_url(url, self._allow_insecure_http)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with _opener.open(request, timeout=HTTP_TIMEOUT) as response:
            if response.status != 200:
                raise ConnectionError(f"GET {url}: status {response.status}")
            body = response.read(MAX_DOCUMENT_BYTES + 1)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"GET {url}: document over {MAX_DOCUMENT_BYTES} bytes")
            cache_control = response.headers.get("Cache-Control")
        try:
            return json.loads(body), cache_control
        except ValueError as error:
            raise ValueError(f"GET {url}: not JSON") from error
