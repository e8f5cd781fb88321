#!/usr/bin/env python3
"""Interop checks between Tessera and independent Python JOSE/PASETO libraries.

Subcommands
-----------
verify --jwks-url URL --paserk-url URL --issuer ISS --audience AUD --tokens FILE
    Verify Tessera-minted tokens (``{"jwt_eddsa", "jwt_es256", "paseto"}`` in
    FILE; other keys are ignored) using only the published JWKS and PASERK
    documents, with PyJWT and pyseto.  For every token a copy with one
    signature character changed must be rejected (negative control).

sign --out-dir DIR --issuer ISS --audience AUD [--subject S]
    Generate fresh keys (Ed25519 + P-256 for JWT, a separate Ed25519 for
    PASETO v4.public) and write DIR/jwks.json, DIR/paserk.json and
    DIR/tokens.json, for Tessera to verify.  No private key is written.

blackbox --issuer URL --backend-id ID --backend-secret SECRET --client-id PUBLIC_ID --audience AUD
    Talk to a running Tessera over HTTP only (urllib): read the RFC 8414
    discovery document (its issuer must equal URL), open a session for
    subject "py-blackbox" at sessions_endpoint as the backend (HTTP Basic),
    verify the access token with PyJWT's PyJWKClient against jwks_uri (typ
    at+jwt, alg from the published JWK, aud, iss), refresh twice at
    token_endpoint as the public client (verifying each new access token),
    then present the first refresh token again (400 invalid_grant: reuse)
    and the newest one (400 invalid_grant: the whole family was revoked).
    Prints {"ok": bool, "steps": [...]}; tokens and secrets are never printed.

Exit codes: 0 success, 1 a verification/expectation failed, 2 usage error.

Dependencies: the standard library, PyJWT[crypto], cryptography, pyseto
(pinned in requirements.txt next to this file).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

TOKEN_NAMES = ("jwt_eddsa", "jwt_es256", "paseto")
ACCESS_TOKEN_TYP = "at+jwt"
REQUIRED_JWT_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
# Members that only a private JWK carries (RFC 7517/7518).
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
HTTP_TIMEOUT = 10  # seconds
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

try:
    import jwt  # PyJWT
    import pyseto
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"jose_interop: missing dependency ({exc}); install with\n"
        f"  python3 -m pip install -r {os.path.join(os.path.dirname(os.path.abspath(__file__)), 'requirements.txt')}\n"
    )
    sys.exit(EXIT_USAGE)


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class CheckFailed(Exception):
    """A verification or expectation failed (exit code 1)."""


# --------------------------------------------------------------------------
# helpers


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def describe(exc: BaseException) -> str:
    msg = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {msg}"


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fetch_json(url: str) -> Any:
    req = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "tessera-jose-interop/1"}
    )
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            status = getattr(resp, "status", 200)
            if status != 200:
                raise CheckFailed(f"GET {url}: HTTP {status}")
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"GET {url}: {describe(exc)}") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CheckFailed(f"GET {url}: body is not JSON ({exc})") from exc


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(value: Any, claim: str) -> dt.datetime:
    """Parse an RFC 3339 date-time string (as PASETO registers exp/iat/nbf)."""
    if not isinstance(value, str):
        raise CheckFailed(
            f"PASETO claim {claim!r} must be an RFC 3339 string, got {type(value).__name__} {value!r}"
        )
    m = _RFC3339.fullmatch(value)
    if not m:
        raise CheckFailed(f"PASETO claim {claim!r} is not RFC 3339: {value!r}")
    date, clock, frac, zone = m.groups()
    text = f"{date}T{clock}"
    if frac:
        text += "." + frac[:6].ljust(6, "0")
    text += "+00:00" if zone in ("Z", "z") else zone
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CheckFailed(f"PASETO claim {claim!r} is not a valid date-time: {value!r} ({exc})") from exc
    return parsed


def rfc3339_utc(epoch_seconds: int) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tamper_char(segment: str, index: int) -> str:
    """Return `segment` with the base64url character at `index` replaced."""
    old = segment[index]
    new = "A" if old != "A" else "B"
    return segment[:index] + new + segment[index + 1 :]


def tamper_jwt_signature(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3 or len(parts[2]) < 8:
        raise CheckFailed("cannot build negative control: token is not a compact JWS")
    # A middle character: all six of its bits are signature bits (the last
    # character may carry padding bits that a lenient decoder ignores).
    parts[2] = tamper_char(parts[2], len(parts[2]) // 2)
    return ".".join(parts)


def tamper_paseto_signature(token: str) -> str:
    parts = token.split(".")
    if len(parts) not in (3, 4) or len(parts[2]) < 100:
        raise CheckFailed("cannot build negative control: token is not a v4.public PASETO")
    # The body is base64url(message || 64-byte signature); 64 bytes are the
    # last ~86 characters, so index len-20 is well inside the signature and
    # is not the (possibly padding-carrying) final character.
    parts[2] = tamper_char(parts[2], len(parts[2]) - 20)
    return ".".join(parts)


# --------------------------------------------------------------------------
# verify


class JwtVerifier:
    def __init__(self, jwks_url: str, issuer: str, audience: str) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.client = jwt.PyJWKClient(jwks_url, cache_jwk_set=True, timeout=HTTP_TIMEOUT)
        self._raw: dict[str, Any] | None = None

    def raw_jwks(self) -> dict[str, Any]:
        """The published JWKS as raw JSON (also primes the client's cache)."""
        if self._raw is None:
            try:
                data = self.client.fetch_data()
            except jwt.exceptions.PyJWKClientError as exc:
                raise CheckFailed(f"cannot fetch JWKS from {self.jwks_url}: {exc}") from exc
            if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
                raise CheckFailed('JWKS document is not {"keys": [...]}')
            for jwk in data["keys"]:
                if not isinstance(jwk, dict):
                    raise CheckFailed("JWKS document has a non-object key entry")
                leaked = [m for m in PRIVATE_JWK_MEMBERS if m in jwk]
                if leaked:
                    raise CheckFailed(
                        f"JWKS entry kid={jwk.get('kid')!r} carries private/secret members {leaked}"
                    )
            self._raw = data
        return self._raw

    def verify(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise CheckFailed("not a compact JWS (expected three dot-separated parts)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.PyJWTError as exc:
            raise CheckFailed(f"unreadable JOSE header: {exc}") from exc
        if header.get("typ") != ACCESS_TOKEN_TYP:
            raise CheckFailed(f"header typ is {header.get('typ')!r}, expected {ACCESS_TOKEN_TYP!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise CheckFailed("header has no kid")

        raw = self.raw_jwks()
        matches = [k for k in raw["keys"] if k.get("kid") == kid]
        if not matches:
            raise CheckFailed(f"kid {kid!r} not in the published JWKS")
        if len(matches) > 1:
            raise CheckFailed(f"kid {kid!r} appears {len(matches)} times in the published JWKS")
        jwk_alg = matches[0].get("alg")
        if not isinstance(jwk_alg, str) or not jwk_alg:
            raise CheckFailed(f"published JWK {kid!r} has no alg; refusing to take it from the token")
        alg = jwk_alg
        if matches[0].get("kty") == "OKP" and matches[0].get("crv") == "Ed25519" and alg == "Ed25519":
            alg = "EdDSA"  # PyJWT's name for Ed25519 signatures

        try:
            signing_key = self.client.get_signing_key_from_jwt(token)
        except jwt.exceptions.PyJWTError as exc:
            raise CheckFailed(f"PyJWKClient found no signing key for kid {kid!r}: {exc}") from exc
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_JWT_CLAIMS},
            )
        except jwt.exceptions.PyJWTError as exc:
            raise CheckFailed(f"PyJWT rejected the token: {describe(exc)}") from exc
        return {"kid": kid, "alg": alg, "claims": claims}


class PasetoVerifier:
    def __init__(self, paserk_url: str, issuer: str, audience: str) -> None:
        self.paserk_url = paserk_url
        self.issuer = issuer
        self.audience = audience
        self._doc: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        if self._doc is None:
            doc = fetch_json(self.paserk_url)
            if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
                raise CheckFailed('PASERK document is not {"keys": [...]}')
            for entry in doc["keys"]:
                if not isinstance(entry, dict):
                    raise CheckFailed("PASERK document has a non-object key entry")
                paserk = entry.get("paserk")
                if isinstance(paserk, str) and not paserk.startswith("k4.public."):
                    raise CheckFailed(
                        f"PASERK entry kid={entry.get('kid')!r} is not a k4.public key "
                        f"({paserk.split('.')[:2]})"
                    )
            self._doc = doc
        return self._doc

    def verify(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token.startswith("v4.public."):
            raise CheckFailed("not a v4.public PASETO")
        parts = token.split(".")
        if len(parts) != 4:
            raise CheckFailed("v4.public token has no footer (expected a JSON footer with kid)")
        try:
            footer = json.loads(b64url_decode(parts[3]))
        except ValueError as exc:
            raise CheckFailed(f"footer is not base64url JSON: {exc}") from exc
        if not isinstance(footer, dict):
            raise CheckFailed("footer JSON is not an object")
        kid = footer.get("kid")
        if not isinstance(kid, str) or not kid.startswith("k4.pid."):
            raise CheckFailed(f"footer kid {kid!r} is not a k4.pid")

        entries = [e for e in self.document()["keys"] if e.get("kid") == kid]
        if not entries:
            raise CheckFailed(f"kid {kid!r} not in the published PASERK set")
        if len(entries) > 1:
            raise CheckFailed(f"kid {kid!r} appears {len(entries)} times in the published PASERK set")
        entry = entries[0]
        paserk = entry.get("paserk")
        if not isinstance(paserk, str):
            raise CheckFailed(f"PASERK entry {kid!r} has no paserk string")
        try:
            key = pyseto.Key.from_paserk(paserk)
        except Exception as exc:
            raise CheckFailed(f"pyseto cannot load PASERK for {kid!r}: {describe(exc)}") from exc
        if key.is_secret:
            raise CheckFailed(f"PASERK entry {kid!r} is a secret key")
        actual_pid = key.to_paserk_id()
        if actual_pid != kid:
            raise CheckFailed(
                f"PASERK document lies about the id: entry kid {kid!r} but its key's id is {actual_pid!r}"
            )

        try:
            decoded = pyseto.decode(key, token, deserializer=json)
        except Exception as exc:
            raise CheckFailed(f"pyseto rejected the token: {describe(exc)}") from exc
        claims = decoded.payload
        if not isinstance(claims, dict):
            raise CheckFailed("PASETO payload is not a JSON object")

        for name in REQUIRED_JWT_CLAIMS:
            if name not in claims:
                raise CheckFailed(f"PASETO claim {name!r} is missing")
        if claims["iss"] != self.issuer:
            raise CheckFailed(f"iss is {claims['iss']!r}, expected {self.issuer!r}")
        aud = claims["aud"]
        if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
            raise CheckFailed(f"aud is {aud!r}, expected {self.audience!r}")
        now = dt.datetime.now(dt.timezone.utc)
        exp = parse_rfc3339(claims["exp"], "exp")
        if exp <= now:
            raise CheckFailed(f"token expired at {claims['exp']} (now {now.isoformat(timespec='seconds')})")
        parse_rfc3339(claims["iat"], "iat")
        if "nbf" in claims:
            nbf = parse_rfc3339(claims["nbf"], "nbf")
            if nbf > now:
                raise CheckFailed(f"token not valid before {claims['nbf']}")
        return {"kid": kid, "alg": "v4.public", "claims": claims}


def check_one(name: str, token: Any, verify: Callable[[str], dict[str, Any]], tamper: Callable[[str], str]) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False}
    if not isinstance(token, str) or not token:
        result["error"] = f"tokens file has no string {name!r}"
        return result
    errors = []
    try:
        info = verify(token)
        result["sub"] = info["claims"].get("sub")
        result["kid"] = info["kid"]
        result["alg"] = info["alg"]
    except CheckFailed as exc:
        errors.append(str(exc))
    except Exception as exc:  # unexpected library behaviour: report, don't crash
        errors.append(f"unexpected error: {describe(exc)}")

    # Negative control: a one-character change in the signature must fail.
    try:
        bad = tamper(token)
    except CheckFailed as exc:
        errors.append(str(exc))
        bad = None
    if bad is not None:
        try:
            verify(bad)
        except Exception as exc:
            result["tampered_rejected"] = True
            result["tampered_error"] = str(exc)
        else:
            result["tampered_rejected"] = False
            errors.append("negative control failed: a copy with one signature character changed still verified")

    if errors:
        result["error"] = "; ".join(errors)
    else:
        result["ok"] = True
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    for flag, url in (("--jwks-url", args.jwks_url), ("--paserk-url", args.paserk_url)):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"{flag} must be an http(s) URL, got {url!r}")
    if not args.issuer or not args.audience:
        raise UsageError("--issuer and --audience must be non-empty")
    try:
        with open(args.tokens, "rb") as fh:
            tokens = json.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read --tokens file {args.tokens!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"--tokens file {args.tokens!r} is not JSON: {exc}") from exc
    if not isinstance(tokens, dict):
        raise UsageError(f"--tokens file {args.tokens!r} must hold a JSON object")

    jwt_verifier = JwtVerifier(args.jwks_url, args.issuer, args.audience)
    paseto_verifier = PasetoVerifier(args.paserk_url, args.issuer, args.audience)
    report = {
        "jwt_eddsa": check_one("jwt_eddsa", tokens.get("jwt_eddsa"), jwt_verifier.verify, tamper_jwt_signature),
        "jwt_es256": check_one("jwt_es256", tokens.get("jwt_es256"), jwt_verifier.verify, tamper_jwt_signature),
        "paseto": check_one("paseto", tokens.get("paseto"), paseto_verifier.verify, tamper_paseto_signature),
    }
    emit(report)
    failed = [name for name in TOKEN_NAMES if not report[name]["ok"]]
    if failed:
        for name in failed:
            sys.stderr.write(f"jose_interop verify: {name}: {report[name].get('error')}\n")
        return EXIT_FAIL
    return EXIT_OK


# --------------------------------------------------------------------------
# sign


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256) over the required public members."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in required}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def ed25519_public_jwk(key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk["alg"] = "EdDSA"
    jwk["use"] = "sig"
    return jwk


def p256_public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk["alg"] = "ES256"
    jwk["use"] = "sig"
    return jwk


def write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def cmd_sign(args: argparse.Namespace) -> int:
    if not args.issuer or not args.audience or not args.subject:
        raise UsageError("--issuer, --audience and --subject must be non-empty")
    out_dir = os.path.abspath(args.out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise CheckFailed(f"cannot create --out-dir {out_dir!r}: {exc.strerror or exc}") from exc

    # Fresh keys; the private halves never leave this process.
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    paseto_key = ed25519.Ed25519PrivateKey.generate()

    ed_jwk = ed25519_public_jwk(ed_key)
    ec_jwk = p256_public_jwk(ec_key)

    paseto_secret = pyseto.Key.new(
        4,
        "public",
        paseto_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    paseto_public = pyseto.Key.new(
        4,
        "public",
        paseto_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    pid = paseto_public.to_paserk_id()
    paserk_public = paseto_public.to_paserk()
    if not pid.startswith("k4.pid.") or not paserk_public.startswith("k4.public."):
        raise CheckFailed(f"pyseto produced unexpected PASERK values: {pid!r}, {paserk_public.split('.')[:2]}")

    now = int(time.time())
    claims = {
        "iss": args.issuer,
        "sub": args.subject,
        "aud": args.audience,
        "iat": now,
        "exp": now + 300,
        "nbf": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": "pyjwt-client",
        "scope": "read write",
    }
    paseto_claims = dict(claims, iat=rfc3339_utc(now), exp=rfc3339_utc(now + 300), nbf=rfc3339_utc(now))

    jwt_eddsa = jwt.encode(claims, ed_key, algorithm="EdDSA", headers={"typ": ACCESS_TOKEN_TYP, "kid": ed_jwk["kid"]})
    jwt_es256 = jwt.encode(claims, ec_key, algorithm="ES256", headers={"typ": ACCESS_TOKEN_TYP, "kid": ec_jwk["kid"]})
    # The payload is passed as bytes we serialized ourselves, so pyseto's
    # registered-claim helper (which would add its own exp/iat in a different
    # form) never runs; no `exp=` argument is given either.
    payload = json.dumps(paseto_claims, separators=(",", ":")).encode("utf-8")
    footer = json.dumps({"kid": pid}, separators=(",", ":")).encode("utf-8")
    paseto_token = pyseto.encode(paseto_secret, payload, footer=footer, serializer=json).decode("ascii")

    # Self-check what we are about to publish.
    got = pyseto.decode(paseto_public, paseto_token, deserializer=json).payload
    if got != paseto_claims:
        raise CheckFailed(f"pyseto altered the PASETO claims: {got!r}")
    for jwk in (ed_jwk, ec_jwk):
        if any(m in jwk for m in PRIVATE_JWK_MEMBERS):
            raise CheckFailed("refusing to publish a JWK with a private member")

    try:
        write_json(os.path.join(out_dir, "jwks.json"), {"keys": [ed_jwk, ec_jwk]})
        write_json(
            os.path.join(out_dir, "paserk.json"),
            {"keys": [{"kid": pid, "paserk": paserk_public, "status": "active"}]},
        )
        write_json(
            os.path.join(out_dir, "tokens.json"),
            {"jwt_eddsa": jwt_eddsa, "jwt_es256": jwt_es256, "paseto": paseto_token, "claims": claims},
        )
    except OSError as exc:
        raise CheckFailed(f"cannot write into {out_dir!r}: {exc.strerror or exc}") from exc

    emit({"ok": True, "dir": out_dir})
    return EXIT_OK


# --------------------------------------------------------------------------
# blackbox

BLACKBOX_SUBJECT = "py-blackbox"
BLACKBOX_SCOPE = "read"
DISCOVERY_PATH = "/.well-known/oauth-authorization-server"
USER_AGENT = "tessera-jose-interop/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are reported, never followed: credentials stay with the issuer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


class Reply:
    """An HTTP answer: status, headers and the body parsed as JSON (or None)."""

    def __init__(self, status: int, headers: Any, body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name) if self.headers is not None else None

    def error_code(self) -> Any:
        return self.body.get("error") if isinstance(self.body, dict) else None

    def describe_error(self) -> str:
        """The status and, if any, the RFC 6749 / Tessera error fields (never tokens)."""
        text = f"HTTP {self.status}"
        if isinstance(self.body, dict):
            fields = {k: self.body[k] for k in ("error", "error_description", "message") if k in self.body}
            if fields:
                text += f" {json.dumps(fields)}"
        return text


def http_call(method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    try:
        with _OPENER.open(request, timeout=HTTP_TIMEOUT) as resp:
            status, resp_headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers = exc.code, exc.headers
        try:
            raw = exc.read()
        finally:
            exc.close()
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"{method} {url}: {describe(exc)}") from exc
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return Reply(status, resp_headers, body)


def basic_authorization(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic."""
    pair = f"{urllib.parse.quote_plus(client_id, safe='')}:{urllib.parse.quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def origin(url: str) -> tuple[str, str | None, int | None]:
    parsed = urllib.parse.urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.hostname, parsed.port or default_port


def require_str(obj: dict[str, Any], name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise CheckFailed(f"{what}: {name!r} is missing or not a non-empty string")
    return value


def require_positive_int(obj: dict[str, Any], name: str, what: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CheckFailed(f"{what}: {name!r} is {value!r}, expected a positive integer")
    return value


def check_token_pair(reply: Reply, what: str) -> dict[str, Any]:
    """The fields every token answer carries; returns the body."""
    body = reply.body
    if not isinstance(body, dict):
        raise CheckFailed(f"{what}: body is not a JSON object")
    require_str(body, "access_token", what)
    require_str(body, "refresh_token", what)
    token_type = require_str(body, "token_type", what)
    if token_type.lower() != "bearer":
        raise CheckFailed(f"{what}: token_type is {token_type!r}, expected Bearer")
    require_positive_int(body, "expires_in", what)
    if body.get("scope") not in (None, BLACKBOX_SCOPE):
        raise CheckFailed(f"{what}: scope is {body.get('scope')!r}, expected {BLACKBOX_SCOPE!r}")
    return body


class BlackBox:
    """One run against a live server; every step appends to `steps`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.steps: list[dict[str, Any]] = []
        self.metadata: dict[str, Any] = {}
        self.verifier: JwtVerifier | None = None
        self.session_id: str | None = None

    def step(self, name: str, **details: Any) -> None:
        self.steps.append({"step": name, "ok": True, **details})

    def endpoint(self, name: str) -> str:
        url = require_str(self.metadata, name, "discovery")
        if origin(url) != origin(self.args.issuer):
            raise CheckFailed(
                f"discovery: {name} {url!r} is not on the issuer's origin; refusing to send credentials there"
            )
        return url

    def discover(self) -> None:
        url = self.args.issuer.rstrip("/") + DISCOVERY_PATH
        reply = http_call("GET", url)
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise CheckFailed(f"GET {url}: {reply.describe_error()}, expected 200 with a JSON object")
        self.metadata = reply.body
        if self.metadata.get("issuer") != self.args.issuer:
            raise CheckFailed(
                f"discovery: issuer is {self.metadata.get('issuer')!r}, expected exactly {self.args.issuer!r} (RFC 8414 §3.3)"
            )
        grants = self.metadata.get("grant_types_supported")
        if not isinstance(grants, list) or "refresh_token" not in grants:
            raise CheckFailed(f"discovery: grant_types_supported {grants!r} lacks refresh_token")
        endpoints = {name: self.endpoint(name) for name in ("jwks_uri", "token_endpoint", "sessions_endpoint")}
        self.verifier = JwtVerifier(endpoints["jwks_uri"], self.args.issuer, self.args.audience)
        self.step("discovery", url=url, **endpoints)

    def verify_access_token(self, name: str, token: str, negative_controls: bool = False) -> dict[str, Any]:
        if self.verifier is None:
            raise CheckFailed("the JWKS is unknown before discovery")
        info = self.verifier.verify(token)
        claims = info["claims"]
        expectations = {
            "sub": BLACKBOX_SUBJECT,
            "client_id": self.args.client_id,
            "sid": self.session_id,
            "scope": BLACKBOX_SCOPE,
        }
        for claim, expected in expectations.items():
            if claims.get(claim) != expected:
                raise CheckFailed(f"{name}: claim {claim} is {claims.get(claim)!r}, expected {expected!r}")
        details: dict[str, Any] = {}
        if negative_controls:
            # The same checks must refuse a changed signature and another audience.
            other = JwtVerifier(self.verifier.jwks_url, self.args.issuer, self.args.audience + ".other")
            for control, verify, candidate in (
                ("tampered_rejected", self.verifier.verify, tamper_jwt_signature(token)),
                ("other_audience_rejected", other.verify, token),
            ):
                try:
                    verify(candidate)
                except CheckFailed:
                    details[control] = True
                else:
                    raise CheckFailed(f"{name}: negative control {control} failed: the token still verified")
        self.step(
            name, kid=info["kid"], alg=info["alg"], typ=ACCESS_TOKEN_TYP, sub=claims["sub"], jti=claims["jti"], **details
        )
        return claims

    def open_session(self) -> dict[str, Any]:
        url = self.endpoint("sessions_endpoint")
        request = {
            "subject": BLACKBOX_SUBJECT,
            "client_id": self.args.client_id,
            "audience": [self.args.audience],
            "scope": BLACKBOX_SCOPE,
        }
        reply = http_call(
            "POST",
            url,
            data=json.dumps(request).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Authorization": basic_authorization(self.args.backend_id, self.args.backend_secret),
            },
        )
        if reply.status != 201:
            raise CheckFailed(f"POST {url}: {reply.describe_error()}, expected 201")
        body = check_token_pair(reply, "open session")
        self.session_id = require_str(body, "session_id", "open session")
        refresh_expires_in = require_positive_int(body, "refresh_expires_in", "open session")
        self.step(
            "open_session",
            status=reply.status,
            session_id=self.session_id,
            expires_in=body["expires_in"],
            refresh_expires_in=refresh_expires_in,
            cache_control=reply.header("Cache-Control"),
        )
        return body

    def refresh_form(self, refresh_token: str) -> Reply:
        form = urllib.parse.urlencode(
            {"grant_type": "refresh_token", "client_id": self.args.client_id, "refresh_token": refresh_token}
        )
        return http_call(
            "POST",
            self.endpoint("token_endpoint"),
            data=form.encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def refresh(self, name: str, refresh_token: str) -> dict[str, Any]:
        reply = self.refresh_form(refresh_token)
        if reply.status != 200:
            raise CheckFailed(f"{name}: {reply.describe_error()}, expected 200")
        body = check_token_pair(reply, name)
        if body["refresh_token"] == refresh_token:
            raise CheckFailed(f"{name}: the refresh token was not rotated")
        cache_control = reply.header("Cache-Control") or ""
        if "no-store" not in cache_control.lower():
            raise CheckFailed(f"{name}: Cache-Control is {cache_control!r}, RFC 6749 §5.1 requires no-store")
        self.step(name, status=reply.status, rotated=True, cache_control=cache_control)
        return body

    def expect_invalid_grant(self, name: str, refresh_token: str) -> None:
        reply = self.refresh_form(refresh_token)
        if reply.status != 400 or reply.error_code() != "invalid_grant":
            raise CheckFailed(f"{name}: {reply.describe_error()}, expected HTTP 400 invalid_grant")
        self.step(name, status=reply.status, error=reply.error_code())

    def run(self) -> None:
        self.discover()
        opened = self.open_session()
        self.verify_access_token("verify_access_token", opened["access_token"], negative_controls=True)
        first = opened["refresh_token"]
        second = self.refresh("refresh", first)
        self.verify_access_token("verify_refreshed_access_token", second["access_token"])
        # Refresh once more so the first token is two generations old: the
        # server may honour the immediately previous token during its grace
        # window (sessions.refresh_grace), but never an older one.
        third = self.refresh("refresh_again", second["refresh_token"])
        self.verify_access_token("verify_second_refreshed_access_token", third["access_token"])
        self.expect_invalid_grant("reuse_first_refresh_token", first)
        self.expect_invalid_grant("latest_refresh_token_revoked_with_family", third["refresh_token"])


def cmd_blackbox(args: argparse.Namespace) -> int:
    parsed = urllib.parse.urlsplit(args.issuer)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--issuer must be an http(s) URL, got {args.issuer!r}")
    for flag, value in (
        ("--backend-id", args.backend_id),
        ("--backend-secret", args.backend_secret),
        ("--client-id", args.client_id),
        ("--audience", args.audience),
    ):
        if not value:
            raise UsageError(f"{flag} must be non-empty")

    run = BlackBox(args)
    try:
        run.run()
    except CheckFailed as exc:
        emit({"ok": False, "steps": run.steps, "error": str(exc)})
        sys.stderr.write(f"jose_interop blackbox: {exc}\n")
        return EXIT_FAIL
    except Exception as exc:  # a library or environment failure we did not foresee
        emit({"ok": False, "steps": run.steps, "error": f"unexpected error: {describe(exc)}"})
        sys.stderr.write(f"jose_interop blackbox: unexpected error: {describe(exc)}\n")
        return EXIT_FAIL
    emit({"ok": True, "steps": run.steps})
    return EXIT_OK


# --------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jose_interop.py",
        description=(
            "Tessera interop: verify Tessera tokens with PyJWT/pyseto, mint tokens for Tessera to verify, "
            "or run a black-box session against a live server."
        ),
        epilog="Exit codes: 0 success, 1 a verification/expectation failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{verify,sign,blackbox}")
    sub.required = True

    v = sub.add_parser("verify", help="verify Tessera-minted tokens against the published JWKS/PASERK documents")
    v.add_argument("--jwks-url", required=True, metavar="URL", help="URL of the JWKS document")
    v.add_argument("--paserk-url", required=True, metavar="URL", help="URL of the PASERK set document")
    v.add_argument("--issuer", required=True, metavar="ISS", help="expected iss")
    v.add_argument("--audience", required=True, metavar="AUD", help="expected aud")
    v.add_argument(
        "--tokens",
        required=True,
        metavar="FILE",
        help='JSON file {"jwt_eddsa": ..., "jwt_es256": ..., "paseto": ...} (other keys ignored)',
    )
    v.set_defaults(func=cmd_verify, subparser=v)

    s = sub.add_parser("sign", help="generate keys and mint tokens for Tessera to verify")
    s.add_argument("--out-dir", required=True, metavar="DIR", help="directory for jwks.json, paserk.json, tokens.json")
    s.add_argument("--issuer", required=True, metavar="ISS", help="iss claim")
    s.add_argument("--audience", required=True, metavar="AUD", help="aud claim (a single string)")
    s.add_argument("--subject", default="interop-user", metavar="S", help="sub claim (default: interop-user)")
    s.set_defaults(func=cmd_sign, subparser=s)

    b = sub.add_parser(
        "blackbox",
        help="black-box run against a live server: discovery, open session, verify, refresh, reuse detection",
    )
    b.add_argument("--issuer", required=True, metavar="URL", help="the issuer URL (discovery must name exactly this)")
    b.add_argument("--backend-id", required=True, metavar="ID", help="confidential client allowed `sessions`")
    b.add_argument("--backend-secret", required=True, metavar="SECRET", help="its client_secret")
    b.add_argument("--client-id", required=True, metavar="PUBLIC_ID", help="public client allowed `refresh_token`")
    b.add_argument("--audience", required=True, metavar="AUD", help="audience of the session's access tokens")
    b.set_defaults(func=cmd_blackbox, subparser=b)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with 2 on usage errors
    try:
        return args.func(args)
    except UsageError as exc:
        args.subparser.print_usage(sys.stderr)
        sys.stderr.write(f"jose_interop.py {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except CheckFailed as exc:
        sys.stderr.write(f"jose_interop {args.command}: {exc}\n")
        if args.command == "sign":
            emit({"ok": False, "error": str(exc)})
        return EXIT_FAIL
    except Exception as exc:  # a library or environment failure we did not foresee
        sys.stderr.write(f"jose_interop {args.command}: unexpected error: {describe(exc)}\n")
        if args.command == "sign":
            emit({"ok": False, "error": describe(exc)})
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
