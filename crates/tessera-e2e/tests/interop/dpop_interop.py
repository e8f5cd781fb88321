#!/usr/bin/env python3
"""DPoP (RFC 9449) interop between Tessera and independent Python libraries.

Subcommands
-----------
client --issuer URL --backend-id ID --backend-secret SECRET --client-id PUBLIC_ID --audience AUD --alg EdDSA|ES256
    Act as a DPoP client of a running Tessera over HTTP only: generate a key
    with ``cryptography``, take its RFC 7638 thumbprint from ``jwcrypto``,
    open a session bound to it (as the backend), then refresh with proofs
    built by PyJWT (``typ: dpop+jwt``, the public JWK in the header). Every
    access token must carry ``cnf.jkt`` equal to jwcrypto's thumbprint,
    ``token_type`` must be ``DPoP``, and each access token must verify with
    PyJWT's PyJWKClient from the JWKS alone. A replayed proof and a proof of
    another key must be refused with ``invalid_dpop_proof``.

check-proof --proof P --method M --url U --jkt J
    Verify a proof made by ``tessera dpop proof`` with PyJWT, using only the
    JWK in its header (the way a DPoP server does): ``typ``, ``alg``, the
    signature, ``htm``, ``htu``, a recent ``iat``, a ``jti``; and check that
    jwcrypto's thumbprint of that JWK equals J (``tessera dpop thumbprint``).
    A copy with one signature character changed must fail (negative control).

Prints {"ok": bool, "steps": [...]}; never prints a token or a key.
Exit codes: 0 success, 1 a check failed, 2 usage error.

Dependencies: PyJWT[crypto], cryptography, jwcrypto (requirements.txt).
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwcrypto import jwk as jwcrypto_jwk

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
HTTP_TIMEOUT = 10


class Failure(Exception):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(key: Any) -> dict[str, str]:
    """The public JWK of a ``cryptography`` private key (RFC 8037 / 7518)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes_raw()
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 SHA-256 thumbprint, computed by jwcrypto."""
    return jwcrypto_jwk.JWK(**jwk).thumbprint()


def make_proof(key: Any, alg: str, method: str, url: str) -> str:
    """A DPoP proof built by PyJWT."""
    payload = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
    headers = {"typ": "dpop+jwt", "jwk": public_jwk(key)}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def new_key(alg: str) -> Any:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=HTTP_TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def basic(client_id: str, secret: str) -> str:
    pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.steps: list[dict[str, Any]] = []
        self.key = new_key(args.alg)
        self.jwk = public_jwk(self.key)
        self.jkt = thumbprint(self.jwk)

    def step(self, name: str, **details: Any) -> None:
        self.steps.append({"step": name, **details})

    def run(self) -> None:
        _, meta = http("GET", self.args.issuer + "/.well-known/oauth-authorization-server")
        if not isinstance(meta, dict) or self.args.alg not in meta.get("dpop_signing_alg_values_supported", []):
            raise Failure(f"discovery does not offer DPoP with {self.args.alg}")
        self.token_endpoint = meta["token_endpoint"]
        self.jwks = jwt.PyJWKClient(meta["jwks_uri"])
        self.step("discovery", dpop_algs=meta["dpop_signing_alg_values_supported"])

        status, opened = http(
            "POST",
            meta["sessions_endpoint"],
            data=json.dumps(
                {"subject": "py-dpop", "client_id": self.args.client_id, "audience": [self.args.audience], "dpop_jkt": self.jkt}
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": basic(self.args.backend_id, self.args.backend_secret)},
        )
        if status != 201:
            raise Failure(f"open session: {status} {opened}")
        self.check_bound("open", opened)

        proof = make_proof(self.key, self.args.alg, "POST", self.token_endpoint)
        refreshed = self.refresh("refresh with a PyJWT proof", opened["refresh_token"], proof, 200)
        self.check_bound("refresh", refreshed)
        self.refresh("the same proof again", refreshed["refresh_token"], proof, 400, "invalid_dpop_proof")
        other = new_key(self.args.alg)
        self.refresh(
            "a proof of another key",
            refreshed["refresh_token"],
            make_proof(other, self.args.alg, "POST", self.token_endpoint),
            400,
            "invalid_dpop_proof",
        )
        again = self.refresh(
            "a fresh proof of the session's key",
            refreshed["refresh_token"],
            make_proof(self.key, self.args.alg, "POST", self.token_endpoint),
            200,
        )
        self.check_bound("refresh again", again)

    def refresh(self, name: str, refresh_token: str, proof: str, want: int, error: str | None = None) -> dict[str, Any]:
        form = urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.args.client_id}
        ).encode()
        status, body = http(
            "POST",
            self.token_endpoint,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "DPoP": proof},
        )
        if status != want or (error is not None and (body or {}).get("error") != error):
            raise Failure(f"{name}: expected {want} {error or ''}, got {status} {body}")
        self.step(name, status=status, error=(body or {}).get("error"))
        return body

    def check_bound(self, name: str, answer: dict[str, Any]) -> None:
        if answer.get("token_type") != "DPoP":
            raise Failure(f"{name}: token_type {answer.get('token_type')!r}, expected DPoP")
        token = answer["access_token"]
        key = self.jwks.get_signing_key_from_jwt(token)
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=self.args.audience,
            issuer=self.args.issuer,
            options={"require": ["exp", "iat", "cnf"]},
        )
        if claims["cnf"].get("jkt") != self.jkt:
            raise Failure(f"{name}: cnf.jkt {claims['cnf']} is not jwcrypto's thumbprint {self.jkt}")
        self.step(name, token_type="DPoP", alg=header.get("alg"), cnf_jkt_matches_jwcrypto=True)


def cmd_client(args: argparse.Namespace) -> int:
    client = Client(args)
    try:
        client.run()
    except (Failure, jwt.PyJWTError, KeyError) as error:
        print(json.dumps({"ok": False, "steps": client.steps, "error": f"{type(error).__name__}: {error}"}))
        return EXIT_FAIL
    print(json.dumps({"ok": True, "steps": client.steps}))
    return EXIT_OK


def check_proof(proof: str, method: str, url: str, jkt: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(proof)
    if header.get("typ") != "dpop+jwt":
        raise Failure(f"typ {header.get('typ')!r}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk:
        raise Failure("the header must carry a public jwk")
    key = jwt.PyJWK(jwk, algorithm=header.get("alg"))
    claims = jwt.decode(proof, key.key, algorithms=["EdDSA", "ES256"], options={"require": ["iat", "jti"]})
    if claims.get("htm") != method or claims.get("htu") != url:
        raise Failure(f"htm/htu {claims.get('htm')} {claims.get('htu')}")
    if abs(time.time() - claims["iat"]) > 60:
        raise Failure("iat is not recent")
    computed = thumbprint(jwk)
    if computed != jkt:
        raise Failure(f"jwcrypto thumbprint {computed} != tessera's {jkt}")
    return {"alg": header["alg"], "thumbprint_matches_jwcrypto": True}


def cmd_check_proof(args: argparse.Namespace) -> int:
    steps: list[dict[str, Any]] = []
    try:
        steps.append({"step": "proof verifies", **check_proof(args.proof, args.method, args.url, args.jkt)})
        head, body, signature = args.proof.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        try:
            check_proof(f"{head}.{body}.{flipped}", args.method, args.url, args.jkt)
        except (Failure, jwt.PyJWTError):
            steps.append({"step": "tampered proof refused"})
        else:
            raise Failure("a tampered proof verified")
    except (Failure, jwt.PyJWTError, ValueError) as error:
        print(json.dumps({"ok": False, "steps": steps, "error": f"{type(error).__name__}: {error}"}))
        return EXIT_FAIL
    print(json.dumps({"ok": True, "steps": steps}))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("client")
    for name in ("--issuer", "--backend-id", "--backend-secret", "--client-id", "--audience"):
        c.add_argument(name, required=True)
    c.add_argument("--alg", choices=["EdDSA", "ES256"], required=True)
    p = sub.add_parser("check-proof")
    for name in ("--proof", "--method", "--url", "--jkt"):
        p.add_argument(name, required=True)
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        return EXIT_USAGE
    return cmd_client(args) if args.command == "client" else cmd_check_proof(args)


if __name__ == "__main__":
    sys.exit(main())
