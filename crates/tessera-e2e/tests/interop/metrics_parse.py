"""Parses a Prometheus text page (stdin) with prometheus_client's own parser.

Prints one JSON object: {"families": {name: type}, "samples": [[name, labels, value], ...]}.
Exits non-zero (with the parser's error) when the page is not valid exposition text.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    families = {}
    samples = []
    for family in text_string_to_metric_families(text):
        if family.name in families:
            print(f"family {family.name} appears twice", file=sys.stderr)
            return 1
        families[family.name] = family.type
        for sample in family.samples:
            samples.append([sample.name, dict(sample.labels), sample.value])
    json.dump({"families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
