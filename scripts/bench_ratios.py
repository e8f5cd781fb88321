#!/usr/bin/env python3
"""Print criterion medians and the ratio of each verifier bench to the raw
Ed25519 verify of the same group (run after `cargo bench -p tessera-verifier`)."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
groups = sorted(p for p in root.iterdir() if (p / "raw_ed25519_verify").is_dir()) if root.is_dir() else []
if not groups:
    sys.exit(f"no criterion results under {root}; run cargo bench -p tessera-verifier --bench verify first")


def median_ns(bench: pathlib.Path) -> float:
    data = json.loads((bench / "new" / "estimates.json").read_text())
    return data["median"]["point_estimate"]


print(f"{'group':<20} {'bench':<24} {'median':>10} {'ratio':>7}")
for group in groups:
    raw = median_ns(group / "raw_ed25519_verify")
    for bench in sorted(p for p in group.iterdir() if (p / "new" / "estimates.json").exists()):
        ns = median_ns(bench)
        print(f"{group.name:<20} {bench.name:<24} {ns / 1000:>8.2f}µs {ns / raw:>6.3f}x")
