"""``python -m bench [sandbox|billing|http ...]``: run the benchmark suites in order."""

from __future__ import annotations

import argparse
import importlib
import sys

SUITES = ("sandbox", "typescript", "billing", "http")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="one of: " + ", ".join(SUITES))
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    for name in args.suites:
        if name not in SUITES:
            parser.error(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    for name in args.suites or SUITES:
        module = importlib.import_module(f"bench.{name}_bench")
        print(f"\n=== {name} ===", flush=True)
        module.run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
