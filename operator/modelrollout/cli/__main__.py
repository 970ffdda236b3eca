"""Console script `kubectl-modelrollout` (kubectl finds it on PATH as `kubectl modelrollout`)."""

from __future__ import annotations

import sys

from modelrollout.cli.app import run


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
