"""Turns the JSON of bench_temporal.py into the Markdown table of BENCHMARKS.md.

    python benchmarks/temporal_table.py out1.json [out2.json ...]
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    rows = [r for path in sys.argv[1:] for r in json.load(open(path))]
    print("| clip (size, frames) | model | strength | warping error per-frame | stabilised | ratio (≤ 0.3) | sharpness ratio (≥ 0.9) | style-loss ratio (≤ 1.1) |")
    print("|---|---|---|---|---|---|---|---|")
    base = {(r["clip"], r["model"]): r for r in rows if r["strength"] == 0.0}
    for r in rows:
        if r["strength"] == 0.0:
            continue
        b = base[(r["clip"], r["model"])]
        print(f"| {r['clip']} ({r['size']}, {r['frames']}) | {r['model']} | {r['strength']:.2f} | {b['we']:.5f} | {r['we']:.5f} | "
              f"{r['we_ratio']:.3f} | {r['sharp_ratio']:.3f} | {r['style_ratio']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
