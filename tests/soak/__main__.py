"""``python -m tests.soak --minutes N [--seed S] [--kinds pool,queue,pipe,sync]``.

Runs the unified fault soak (see the package docstring) from the repository's root and
exits with status 1 on any problem or resource growth. ``tests/`` goes on ``sys.path``
first, as pytest puts it, so that the soak imports ``faults._queue_kill`` under the same
name in both.
"""

from __future__ import annotations

import argparse
import os
import sys

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def main(argv: list[str] | None = None) -> int:
    from ._runner import SHARES, Config, run

    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds")
    parser.add_argument("--kinds", default=",".join(SHARES), help="comma-separated")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(kinds) - set(SHARES)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {list(SHARES)}")
    config = Config(minutes=args.minutes, seed=args.seed, warmup=args.warmup, kinds=kinds)
    try:
        result = run(config)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 1
    print("\n".join(result.lines()), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
