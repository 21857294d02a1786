"""``python -m benchmarks [--events N]`` (``make bench``): prints events/s and ratios."""

from __future__ import annotations

import argparse
import asyncio

from benchmarks.suite import run_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events per benchmark")
    args = parser.parse_args()
    rows = asyncio.run(run_all(args.events))
    width = max(len(row["name"]) for row in rows)
    print(
        f"{'benchmark':<{width}}  {'ours ev/s':>12}  {'baseline ev/s':>14}  {'ratio':>7}  baseline"
    )
    for row in rows:
        print(
            f"{row['name']:<{width}}  {row['ours']:>12,.0f}  {row['baseline']:>14,.0f}  "
            f"{row['ours'] / row['baseline']:>6.1f}x  {row['baseline_name']}"
        )


if __name__ == "__main__":
    main()
