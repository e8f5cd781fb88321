"""Checks Tessera's /openapi.json with independent tools.

    openapi_check.py DOCUMENT.json SAMPLES.json

1. openapi-spec-validator validates DOCUMENT as OpenAPI 3.1.
2. Each sample {"path", "method", "status", "body"} (a real answer of the
   server) is validated with jsonschema against the documented response
   schema of that path, method and status, with every documented object
   closed (additionalProperties: false, unless it is a free-form object), so
   an answer field missing from the document fails too.

Prints "ok N" and exits 0, or prints each problem and exits 1.
"""
import copy
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def closed(schema):
    """A copy of `schema` with every object that lists properties closed."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def main() -> int:
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    with open(sys.argv[2]) as f:
        samples = json.load(f)
    problems = []
    try:
        validate(doc)
    except Exception as e:  # the validator's own error types vary by version
        problems.append(f"not valid OpenAPI: {e}")
    if not str(doc.get("openapi", "")).startswith("3.1"):
        problems.append(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    components = closed(doc.get("components", {}))
    for s in samples:
        where = f"{s['method'].upper()} {s['path']} {s['status']}"
        op = doc.get("paths", {}).get(s["path"], {}).get(s["method"])
        if op is None:
            problems.append(f"{where}: not in the document")
            continue
        response = op.get("responses", {}).get(str(s["status"]))
        if response is None:
            problems.append(f"{where}: status not documented")
            continue
        content = response.get("content", {}).get("application/json")
        if content is None:
            problems.append(f"{where}: no application/json schema")
            continue
        root = closed(copy.deepcopy(content["schema"]))
        root["components"] = components
        for error in Draft202012Validator(root).iter_errors(s["body"]):
            problems.append(f"{where}: {error.message} at {list(error.absolute_path)}")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"ok {len(samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
