"""`make demo`: one canary promoted step by step, one rolled back by analysis, under live load;
then everything stops (`--keep`: until Ctrl-C).

    python -m demo.run [--kwok] [--keep] [--non-interactive] [--workdir DIR]

By default on a real node, as users run it (demo/node.py: pods from our images, the chart, a
Traefik gateway, Prometheus discovering the pods); `--kwok` is the quick variant on fake nodes
with model servers as processes (demo/kwok.py), which needs no root and no image build.
The last line of a run is `DEMO-SUMMARY {json}`: each ModelDeployment's outcome, for tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demo.story import REPO, interrupt_once, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo")
    parser.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    parser.add_argument(
        "--non-interactive", action="store_true", help="one line per change, no screen redraws"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the rollouts")
    parser.add_argument(
        "--kwok",
        action="store_true",
        help="the quick variant: kwok's fake nodes, model servers as processes (no root)",
    )
    args = parser.parse_args(argv)
    interactive = sys.stdout.isatty() and not args.non_interactive
    # Imported here: each variant pulls in its own part of the test environment.
    if args.kwok:
        from demo.kwok import run_on_kwok as run
    else:
        from demo.node import run_on_node as run
    with interrupt_once():
        try:
            run(args.workdir.resolve(), args.keep, interactive, args.timeout)
        except KeyboardInterrupt:
            say("Stopped (Ctrl-C); no process left running.")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
