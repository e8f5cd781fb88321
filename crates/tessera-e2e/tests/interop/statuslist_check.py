#!/usr/bin/env python3
"""Independent decoder for a Token Status List served by Tessera.

    statuslist_check.py --issuer URL --list URI --expect FILE
    statuslist_check.py --self-test

What it checks (draft-ietf-oauth-status-list), over plain HTTP:

1. RFC 8414 metadata at URL/.well-known/oauth-authorization-server: its
   ``issuer`` equals URL, and URI starts with its ``status_list_uri_prefix``.
2. GET URI with ``Accept: application/statuslist+jwt`` answers 200 with
   Content-Type ``application/statuslist+jwt`` and a compact JWS.
3. The JWS header has typ ``statuslist+jwt``, alg ``EdDSA`` (nothing else is
   accepted) and a kid; PyJWT verifies the signature with the key that
   ``PyJWKClient`` finds at the metadata's ``jwks_uri`` and requires sub, iat
   and exp (exp must not have passed).  sub must equal URI, iss (if present)
   URL, and ttl must be a positive integer.
4. ``status_list`` is ``{"bits": 1, "lst": ...}`` where lst is unpadded
   base64url of a zlib (RFC 1950) stream.  Index i is bit (i % 8) of byte
   i // 8, counted from the least significant bit; 1 = revoked, 0 = valid.
5. FILE is ``{"revoked": [int...], "live": [int...]}``: every revoked index
   must read 1, every live index 0; an index past the end of the list fails.

Why it is independent of the Rust code: it shares nothing with Tessera but
the wire format.  HTTP is urllib, JWS verification is PyJWT, decompression is
Python's zlib, and the bit order is written out here from the draft (and
checked in --self-test against the draft's own example, 0xB9 0xA3).  A bug
that Tessera's encoder and decoder share cannot hide here.

Prints one JSON line: {"ok", "token_bytes", "lst_bytes", "decompressed_bytes",
"bits_set", "revoked_checked", "live_checked", "mismatches"} (at most 10
mismatches; fields not reached are null).  Reasons for failure go to stderr.
Exit codes: 0 all agree, 1 a check or expectation failed, 2 usage error.
Needs PyJWT[crypto] (tests/interop/requirements.txt) except for --self-test.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
import urllib.error
import urllib.request
import zlib
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
HTTP_TIMEOUT = 10  # seconds
DISCOVERY_PATH = "/.well-known/oauth-authorization-server"
MEDIA_TYPE = "application/statuslist+jwt"
TYP = "statuslist+jwt"
ALG = "EdDSA"
MAX_MISMATCHES = 10
B64URL = re.compile(r"[A-Za-z0-9_-]*")
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class UsageError(Exception):
    """Bad command-line input or expectation file (exit 2)."""


class CheckFailed(Exception):
    """The server's answer is wrong (exit 1)."""


# --------------------------------------------------------------------------
# decoding (pure functions, exercised by --self-test)


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; refuse padding and foreign characters."""
    if not isinstance(text, str) or not B64URL.fullmatch(text):
        raise CheckFailed("not unpadded base64url (found '=' or a character outside A-Z a-z 0-9 - _)")
    if len(text) % 4 == 1:
        raise CheckFailed("base64url text has an impossible length")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CheckFailed(f"bad base64url: {exc}") from exc


def decode_lst(lst: str) -> bytes:
    """`lst` -> the status bytes: base64url, then one complete zlib stream."""
    compressed = b64url_decode(lst)
    inflater = zlib.decompressobj()  # default wbits: zlib (RFC 1950) framing
    try:
        data = inflater.decompress(compressed) + inflater.flush()
    except zlib.error as exc:
        raise CheckFailed(f"lst is not a zlib (RFC 1950) stream: {exc}") from exc
    if not inflater.eof:
        raise CheckFailed("lst zlib stream is truncated")
    if inflater.unused_data:
        raise CheckFailed(f"lst has {len(inflater.unused_data)} bytes after the zlib stream")
    return data


def read_bit(data: bytes, index: int) -> int:
    """Status of `index` with bits=1: bit index % 8 (LSB first) of byte index // 8."""
    if index < 0 or index // 8 >= len(data):
        raise IndexError(f"index {index} is beyond the list ({len(data) * 8} entries)")
    return (data[index // 8] >> (index % 8)) & 1


def count_set(data: bytes) -> int:
    return sum(bin(b).count("1") for b in data)


def jws_header(token: str) -> dict[str, Any]:
    """The protected header, read by hand (PyJWT checks it again when verifying)."""
    try:
        header = json.loads(b64url_decode(token.split(".")[0]))
    except ValueError as exc:
        raise CheckFailed(f"JWS header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise CheckFailed("JWS header is not a JSON object")
    return header


def is_pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --------------------------------------------------------------------------
# network


def http_get(url: str, accept: str) -> tuple[str, bytes]:
    """GET `url`; return (media type without parameters, body). Non-200 fails."""
    req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "tessera-statuslist-check/1"})
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            if resp.status != 200:
                raise CheckFailed(f"GET {url}: HTTP {resp.status}")
            ctype = resp.headers.get("Content-Type", "")
            return ctype.split(";")[0].strip().lower(), resp.read()
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc


def discover(issuer: str, list_uri: str) -> str:
    """Read RFC 8414 metadata; return jwks_uri."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    _, body = http_get(url, "application/json")
    try:
        meta = json.loads(body)
    except ValueError as exc:
        raise CheckFailed(f"{url} is not JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckFailed(f"{url} is not a JSON object")
    if meta.get("issuer") != issuer:
        raise CheckFailed(f"metadata issuer is {meta.get('issuer')!r}, expected {issuer!r}")
    jwks_uri, prefix = meta.get("jwks_uri"), meta.get("status_list_uri_prefix")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise CheckFailed("metadata has no jwks_uri")
    if not isinstance(prefix, str) or not prefix:
        raise CheckFailed("metadata has no status_list_uri_prefix")
    if not list_uri.startswith(prefix):
        raise CheckFailed(f"list URI {list_uri!r} does not start with status_list_uri_prefix {prefix!r}")
    return jwks_uri


def fetch_token(list_uri: str) -> str:
    ctype, body = http_get(list_uri, MEDIA_TYPE)
    if ctype != MEDIA_TYPE:
        raise CheckFailed(f"Content-Type is {ctype!r}, expected {MEDIA_TYPE!r}")
    token = body.decode("ascii", errors="replace")
    if not COMPACT_JWS.fullmatch(token):
        raise CheckFailed("response body is not a compact JWS (three base64url parts, nothing else)")
    return token


def verify_token(token: str, jwks_uri: str, issuer: str, list_uri: str) -> dict[str, Any]:
    """Check the header, verify the signature with PyJWT, check the claims."""
    header = jws_header(token)
    if header.get("typ") != TYP:
        raise CheckFailed(f"header typ is {header.get('typ')!r}, expected {TYP!r}")
    if header.get("alg") != ALG:
        raise CheckFailed(f"header alg is {header.get('alg')!r}; only {ALG!r} is accepted")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise CheckFailed("header has no kid")

    import jwt  # PyJWT; check() made sure it is importable

    try:
        key = jwt.PyJWKClient(jwks_uri, timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALG],
            options={"require": ["sub", "iat", "exp"], "verify_aud": False},
        )
    except jwt.exceptions.PyJWTError as exc:
        raise CheckFailed(f"PyJWT rejected the status list token: {type(exc).__name__}: {exc}") from exc
    if claims["sub"] != list_uri:
        raise CheckFailed(f"sub is {claims['sub']!r}, expected the list URI {list_uri!r}")
    if "iss" in claims and claims["iss"] != issuer:
        raise CheckFailed(f"iss is {claims['iss']!r}, expected {issuer!r}")
    if not is_pos_int(claims.get("ttl")):
        raise CheckFailed(f"ttl is {claims.get('ttl')!r}, expected a positive integer")
    return claims


def status_bytes(claims: dict[str, Any]) -> tuple[str, bytes]:
    sl = claims.get("status_list")
    if not isinstance(sl, dict):
        raise CheckFailed("status_list claim is missing or not an object")
    bits = sl.get("bits")
    if isinstance(bits, bool) or bits != 1:
        raise CheckFailed(f"status_list.bits is {bits!r}; only 1 is supported")
    lst = sl.get("lst")
    if not isinstance(lst, str):
        raise CheckFailed("status_list.lst is missing or not a string")
    return lst, decode_lst(lst)


# --------------------------------------------------------------------------
# expectations and main


def load_expectations(path: str) -> tuple[list[int], list[int]]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read expectation file {path}: {exc}") from exc
    lists = []
    for name in ("revoked", "live"):
        values = doc.get(name) if isinstance(doc, dict) else None
        ok = isinstance(values, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
        )
        if not ok:
            raise UsageError(f'{path}: "{name}" must be a list of non-negative integers')
        lists.append(values)
    both = set(lists[0]) & set(lists[1])
    if both:
        raise UsageError(f"{path}: indices both revoked and live: {sorted(both)[:10]}")
    return lists[0], lists[1]


def compare(data: bytes, revoked: list[int], live: list[int]) -> list[dict[str, Any]]:
    """Every disagreement; "got" is null for an index beyond the list."""
    mismatches = []
    for expected, indices in ((1, revoked), (0, live)):
        for i in indices:
            try:
                got: int | None = read_bit(data, i)
            except IndexError:
                got = None
            if got != expected:
                mismatches.append({"index": i, "expected": expected, "got": got})
    return mismatches


def check(args: argparse.Namespace) -> int:
    revoked, live = load_expectations(args.expect)
    try:
        import jwt  # noqa: F401  (PyJWT, imported lazily so that --self-test needs only the standard library)
    except ImportError as exc:
        raise UsageError(f"missing dependency ({exc}); pip install -r crates/tessera-e2e/tests/interop/requirements.txt") from exc
    result: dict[str, Any] = {
        "ok": False, "token_bytes": None, "lst_bytes": None, "decompressed_bytes": None,
        "bits_set": None, "revoked_checked": 0, "live_checked": 0, "mismatches": [],
    }  # fmt: skip
    try:
        jwks_uri = discover(args.issuer, args.list)
        token = fetch_token(args.list)
        result["token_bytes"] = len(token)
        claims = verify_token(token, jwks_uri, args.issuer, args.list)
        lst, data = status_bytes(claims)
        result.update(lst_bytes=len(lst), decompressed_bytes=len(data), bits_set=count_set(data))
        mismatches = compare(data, revoked, live)
        result.update(revoked_checked=len(revoked), live_checked=len(live), mismatches=mismatches[:MAX_MISMATCHES])
        if mismatches:
            beyond = sum(1 for m in mismatches if m["got"] is None)
            raise CheckFailed(
                f"{len(mismatches)} indices disagree with {args.expect}"
                + (f" ({beyond} beyond the list's {len(data) * 8} entries)" if beyond else "")
            )
        result["ok"] = True
        return EXIT_OK
    except CheckFailed as exc:
        sys.stderr.write(f"statuslist_check: {exc}\n")
        return EXIT_FAIL
    finally:
        sys.stdout.write(json.dumps(result) + "\n")


def self_test() -> int:
    """Exercise the decoding functions on hand-built data; no network."""
    failures = []

    def expect(name: str, cond: bool) -> None:
        if not cond:
            failures.append(name)

    def refused(func: Any, *a: Any) -> bool:
        try:
            func(*a)
        except (CheckFailed, IndexError):
            return True
        return False

    def lst_of(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    one = bytes([0b00000101])
    expect("0b101 sets indices 0 and 2", [read_bit(one, i) for i in range(8)] == [1, 0, 1, 0, 0, 0, 0, 0])
    expect("index 15 is the MSB of byte 1", [i for i in range(16) if read_bit(bytes([0, 0x80]), i)] == [15])
    expect("index 8 is the LSB of byte 1", [i for i in range(16) if read_bit(bytes([0, 0x01]), i)] == [8])
    expect("index 8 of a 1-byte list is refused", refused(read_bit, one, 8))
    expect("negative index is refused", refused(read_bit, one, -1))
    expect("count_set", count_set(bytes([0b101, 0xFF, 0])) == 10)
    # The draft's example for bits=1: statuses 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1.
    draft = decode_lst("eNrbuRgAAhcBXQ")
    expect("draft example decodes to B9 A3", draft == bytes([0xB9, 0xA3]))
    expect("draft example indices", [i for i in range(16) if read_bit(draft, i)] == [0, 3, 4, 5, 7, 8, 9, 13, 15])
    raw = bytes([0b101]) + bytes(999) + bytes([0x80])
    expect("zlib round trip", decode_lst(lst_of(zlib.compress(raw, 9))) == raw)
    expect("'-' and '_' decode", b64url_decode("-_-_") == bytes([0xFB, 0xFF, 0xBF]))
    expect("padding is refused", refused(b64url_decode, lst_of(b"ab") + "=="))
    expect("'+' and '/' are refused", refused(b64url_decode, "+/+/"))
    expect("impossible length is refused", refused(b64url_decode, "AAAAA"))
    raw_deflate = zlib.compressobj(wbits=-15)
    deflated = raw_deflate.compress(raw) + raw_deflate.flush()
    expect("raw deflate (no zlib header) is refused", refused(decode_lst, lst_of(deflated)))
    gzipper = zlib.compressobj(wbits=31)
    expect("gzip is refused", refused(decode_lst, lst_of(gzipper.compress(raw) + gzipper.flush())))
    expect("truncated stream is refused", refused(decode_lst, lst_of(zlib.compress(raw)[:-3])))
    expect("trailing bytes are refused", refused(decode_lst, lst_of(zlib.compress(raw) + b"x")))
    mm = compare(bytes([0b101]), revoked=[0, 1], live=[2, 3, 9])
    expect("compare", mm == [
        {"index": 1, "expected": 1, "got": 0},
        {"index": 2, "expected": 0, "got": 1},
        {"index": 9, "expected": 0, "got": None},
    ])  # fmt: skip
    hdr = lst_of(json.dumps({"typ": TYP, "alg": ALG, "kid": "k"}).encode())
    expect("header read by hand", jws_header(hdr + ".e30.c2ln") == {"typ": TYP, "alg": ALG, "kid": "k"})

    for name in failures:
        sys.stderr.write(f"statuslist_check self-test FAILED: {name}\n")
    sys.stdout.write(json.dumps({"ok": not failures, "failures": failures}) + "\n")
    return EXIT_FAIL if failures else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", help="issuer URL (metadata issuer must equal it)")
    parser.add_argument("--list", help="status list URI (the token's sub)")
    parser.add_argument("--expect", help='JSON file {"revoked": [...], "live": [...]}')
    parser.add_argument("--self-test", action="store_true", help="test the decoder offline and exit")
    args = parser.parse_args(argv)  # exits 2 on usage errors
    if args.self_test:
        return self_test()
    if not (args.issuer and args.list and args.expect):
        parser.error("--issuer, --list and --expect are required (or --self-test)")
    try:
        return check(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"statuslist_check: error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
